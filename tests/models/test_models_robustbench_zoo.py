"""The RobustBench bridge: zoo architectures loaded by robustbench's code from checkpoint files
made here in robustbench's layout (no download), evaluated from the CLI, and the published
entries as a board. Skipped without the `robustbench` extra (CI installs it)."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
import torch
from helpers import assert_one_line_error, run_cli

from robench.errors import CheckpointError, RobenchError

from synthetic import make_image_folder

pytest.importorskip("timm")  # the extra's own dependencies; robustbench itself is imported below
zoo = pytest.importorskip("robench.models.robustbench_zoo")
try:
    zoo.robustbench_modules()
except RobenchError:
    pytest.skip("the robustbench extra is not installed", allow_module_level=True)

NAME = "Sehwag2021Proxy_R18"  # a ResNet-18: the smallest single-checkpoint zoo architecture


def _zoo_checkpoint(model_dir, name=NAME, threat_model="Linf", drop=(), extra=None, seed=0):
    """A checkpoint of the zoo architecture with seeded random weights, saved the way the zoo's
    files are (under 'state_dict', keys prefixed 'module.'); returns the model."""
    entry = zoo.zoo_entry(name, threat_model)
    torch.manual_seed(seed)
    model = entry["model"]().eval()
    state = {f"module.{k}": v for k, v in model.state_dict().items() if k not in drop}
    state.update(extra or {})
    path = zoo.checkpoint_path(model_dir, name, threat_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "epoch": 7}, path)
    return model


def test_a_zoo_checkpoint_loads_key_by_key_with_identical_logits(tmp_path):
    made = _zoo_checkpoint(tmp_path)
    loaded = zoo.load_zoo_model(NAME, "Linf", tmp_path)
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(loaded.model(x), made(x)) and not loaded.model.training
    assert loaded.kept_constants == () and loaded.robustbench_version == "1.1.1"


def test_only_the_constructors_normalisation_constants_may_be_missing(tmp_path):
    # Wong2020Fast's checkpoints lack mu and sigma; robustbench loads them with strict=False
    made = _zoo_checkpoint(tmp_path, "Wong2020Fast", drop=("mu", "sigma"))
    loaded = zoo.load_zoo_model("Wong2020Fast", "Linf", tmp_path)
    assert loaded.kept_constants == ("mu", "sigma")
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(loaded.model(x), made(x))
    _zoo_checkpoint(tmp_path, "Wong2020Fast", drop=("linear.weight",))
    with pytest.raises(CheckpointError, match=r"1 missing \(e.g. linear.weight\)"):
        zoo.load_zoo_model("Wong2020Fast", "Linf", tmp_path)
    _zoo_checkpoint(tmp_path, extra={"module.scores": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="1 unexpected"):
        zoo.load_zoo_model(NAME, "Linf", tmp_path)


def test_a_pickle_with_code_is_refused(tmp_path):
    path = zoo.checkpoint_path(tmp_path, NAME, "Linf")
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.zeros(1)}, "f": json.dumps}, path)  # a function
    with pytest.raises(CheckpointError, match="weights_only=True"):
        zoo.load_zoo_model(NAME, "Linf", tmp_path)


def test_a_missing_checkpoint_that_cannot_be_downloaded_names_the_file(tmp_path, monkeypatch):
    _, utils = zoo.robustbench_modules()

    def offline(gdrive_id, fname_save):
        with open(fname_save, "wb") as handle:  # a partial file, then the network fails
            handle.write(b"\0" * 10)
        raise ConnectionError("no network")

    monkeypatch.setattr(utils, "download_gdrive_new", offline)
    with pytest.raises(RobenchError) as info:
        zoo.load_zoo_model(NAME, "Linf", tmp_path)
    expected = zoo.checkpoint_path(tmp_path, NAME, "Linf")
    message = str(info.value)
    assert str(expected) in message and "drive.google.com/uc?id=" in message
    assert "ConnectionError" in message and len(message.splitlines()) == 1
    assert list(expected.parent.iterdir()) == []  # no partial file left where it is looked for


def test_unknown_names_and_threat_models_are_one_line(tmp_path):
    with pytest.raises(RobenchError, match="did you mean Sehwag"):
        zoo.load_zoo_model("Sehwag2021", "Linf", tmp_path)
    with pytest.raises(RobenchError, match="must be one of Linf, L2"):
        zoo.load_zoo_model(NAME, "Linf-inf", tmp_path)


def test_a_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "robustbench", None)  # import fails as if not installed
    with pytest.raises(RobenchError, match=r"pip install -e '\.\[robustbench\]'"):
        zoo.robustbench_modules()


@pytest.mark.slow  # PGD-20 on a ResNet-18
def test_robench_eval_robustbench_end_to_end(tmp_path, monkeypatch, capsys):
    made = _zoo_checkpoint(tmp_path / "zoo")
    data = make_image_folder(tmp_path / "data", train_per_class=1, test_per_class=2)
    boards = tmp_path / "boards"
    args = ("eval", "--robustbench", NAME, "--robustbench-dir", str(tmp_path / "zoo"),
            "--data", "imagefolder", "--data-dir", str(data), "--n", "12",
            "--cross-check-images", "4", "--cross-check-queries", "20",
            "--leaderboard-dir", str(boards), "--device", "cpu")  # fmt: skip
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    row = pd.read_csv(boards / "pgd20.csv").iloc[0]
    assert row["run"] == f"robustbench/Linf/{NAME}" and row["model"] == f"robustbench:Linf/{NAME}"
    assert row["pretext"] == "robustbench" and row["n_eval"] == 12
    assert (row["published_ta"], row["published_aa"]) == (84.59, 55.54)  # RobustBench's
    assert "78fcc9e" in row["published_source"] and "published: TA 84.59" in out
    assert row["ra"] <= row["ta"] and row["model_id"].startswith("weights:")
    # The same weights again: the stored flags are reused, the row is replaced, not added.
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert len(pd.read_csv(boards / "pgd20.csv")) == 1
    # robench.load gives the same model from robench's cache folder
    import robench

    monkeypatch.setenv("ROBENCH_CACHE", str(tmp_path / "cache"))
    _zoo_checkpoint(tmp_path / "cache" / "robustbench")
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(robench.load(f"robustbench:{NAME}")(x), made(x))


def test_eval_robustbench_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "eval", "--robustbench", NAME, "--threat-model",
                           "Linfinity", "--leaderboard-dir", str(tmp_path))  # fmt: skip
    assert_one_line_error(code, err, "must be Linf or L2")
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path), "--robustbench", NAME,
                           "--leaderboard-dir", str(tmp_path))  # fmt: skip
    assert_one_line_error(code, err, "one kind of model")


def test_leaderboard_robustbench_writes_the_published_entries(tmp_path, monkeypatch, capsys):
    out = tmp_path / "robustbench-linf.csv"
    code, text, err = run_cli(monkeypatch, capsys, "leaderboard", "robustbench", "--out", str(out))
    assert code == 0, err
    board = pd.read_csv(out)
    standard = board[board["model_name"] == "Standard"].iloc[0]
    assert (standard["clean_acc"], standard["autoattack_acc"]) == (94.78, 0.0)
    assert set(board["threat_model"]) == {"Linf"} and len(board) > 50
    code, text, _ = run_cli(monkeypatch, capsys, "leaderboard", "validate", str(out))
    assert code == 0 and "valid" in text
    # A checkout's model_info folder instead of the snapshot; rows are upserted by model.
    info = tmp_path / "model_info" / "cifar10" / "L2"
    info.mkdir(parents=True)
    entry = {"name": "=cmd|' /C calc'!A0", "clean_acc": "90.1", "autoattack_acc": "70.2",
             "architecture": "ResNet-18", "venue": "", "eps": "0.5"}  # fmt: skip
    (info / "Mine2026.json").write_text(json.dumps(entry))
    info_dir = str(tmp_path / "model_info")
    code, _, err = run_cli(monkeypatch, capsys, "leaderboard", "robustbench", "--out", str(out),
                           "--threat-model", "L2", "--model-info", info_dir)  # fmt: skip
    assert code == 0, err
    mine = pd.read_csv(out).query("model_name == 'Mine2026'").iloc[0]
    assert mine["autoattack_acc"] == 70.2 and mine["venue"] == "Unpublished"
    assert not str(mine["paper"]).startswith("=")  # a spreadsheet never runs it
    code, _, err = run_cli(monkeypatch, capsys, "leaderboard", "robustbench", "--out", str(out),
                           "--model-info", str(tmp_path / "nowhere"))  # fmt: skip
    assert_one_line_error(code, err, "model_info")


def test_a_fresh_process_finds_the_zoo():
    """robustbench 1.1.1 imports `autoattack`: the alias must be set before its first import
    in a process that has not imported anything else (the test module itself already has)."""
    import subprocess

    code = "from robench.models.robustbench_zoo import zoo_entry; zoo_entry('Standard', 'L2')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
