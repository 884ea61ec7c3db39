"""export -> load round trips, the model card's numbers, the Hub cache, push's wiring."""

from __future__ import annotations

import json
import sys

import pytest
import torch
import yaml
from helpers import assert_one_line_error, run_cli, suite_toml
from safetensors import safe_open

import robench
from robench.errors import RobenchError

from synthetic import make_image_folder

pytestmark = pytest.mark.slow  # trains one tiny run

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = ("README.md", "config.json", "model.safetensors")


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    """DIR/runs/P1F4 (trained) and DIR/leaderboards/pgd20.csv with its row."""
    root = tmp_path_factory.mktemp("export")
    data = make_image_folder(root / "data", train_per_class=8, test_per_class=4)
    (root / "suite.toml").write_text(suite_toml(runs={"P1F4": {"finetune": "F4"}}))
    from robench.cli import main

    mp = pytest.MonkeyPatch()
    for argv in (
        ["train", str(root / "suite.toml"), "--out", str(root / "runs")],
        ["eval", str(root / "runs" / "P1F4"), "--leaderboard-dir", str(root / "leaderboards"),
         "--n", "40", "--cross-check-images", "8"],
    ):  # fmt: skip
        mp.setattr(sys, "argv", ["robench", *argv, "--data-dir", str(data), "--device", "cpu"])
        with pytest.raises(SystemExit) as info:
            main()
        assert info.value.code in (0, None)
    mp.undo()
    return root


def test_export_and_load_give_the_same_logits(repro, tmp_path, monkeypatch, capsys):
    out = tmp_path / "model"
    code, _, err = run_cli(monkeypatch, capsys, "export", str(repro / "runs" / "P1F4"), "--out",
                           str(out))  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == list(FILES)
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "preact_tiny" and config["input_range"] == [0.0, 1.0]
    assert config["scenario"] == "P1F4" and config["protocol"]["epochs"] >= 1
    x = torch.rand(5, 3, 32, 32)
    exported, trained = robench.load(out), robench.load(repro / "runs" / "P1F4")
    assert torch.equal(exported(x), trained(x))


def test_the_model_card_carries_the_board_numbers(repro, tmp_path):
    import pandas as pd

    from robench.artifacts import export_run

    out = export_run(repro / "runs" / "P1F4", tmp_path / "card")
    text = (out / "README.md").read_text()
    front = yaml.safe_load(text.split("---")[1])
    assert front["library_name"] == "robench" and "adversarial-robustness" in front["tags"]
    metrics = front["model-index"][0]["results"][0]["metrics"]
    row = pd.read_csv(repro / "leaderboards" / "pgd20.csv").iloc[0]
    by_type = {m["type"]: m for m in metrics}
    assert by_type["robust-accuracy"]["value"] == round(row["ra"], 2)
    assert "n=40" in by_type["robust-accuracy"]["name"] and "95% CI" in by_type["accuracy"]["name"]
    assert "## pgd20" in text  # the rows themselves, in the body


def test_trunk_only_exports_the_trunk(repro, tmp_path):
    from robench.artifacts import export_run

    out = export_run(repro / "runs" / "P1F4", tmp_path / "trunk", trunk_only=True)
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert all(k.startswith("model.trunk.") for k in f.keys())  # noqa: SIM118
    trunk, full = robench.load(out), robench.load(repro / "runs" / "P1F4")
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(trunk(full.normalize(x)), full.features(x))


def test_load_from_a_local_hub_cache(repro, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from robench.artifacts import export_run

    cache = tmp_path / "hub"
    snapshot = cache / "models--lab--tiny-robust" / "snapshots" / COMMIT
    export_run(repro / "runs" / "P1F4", snapshot)
    (cache / "models--lab--tiny-robust" / "refs").mkdir()
    (cache / "models--lab--tiny-robust" / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    x = torch.rand(2, 3, 32, 32)
    reference = robench.load(repro / "runs" / "P1F4")(x)
    for source in ("hf-hub:lab/tiny-robust", f"hf-hub:lab/tiny-robust@{COMMIT}"):
        assert torch.equal(robench.load(source)(x), reference)
    with pytest.raises(RobenchError, match="not in the Hub cache"):
        robench.load("hf-hub:lab/absent")
    with pytest.raises(RobenchError, match="looks like hf-hub:ORG/NAME"):
        robench.load("hf-hub:no slash")


def test_bad_input_is_one_line(repro, tmp_path, monkeypatch, capsys):
    run = str(repro / "runs" / "P1F4")
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(monkeypatch, capsys, "export", run, "--out", str(tmp_path / "file"))
    assert_one_line_error(code, err, "is a file")
    code, _, err = run_cli(monkeypatch, capsys, "export", str(tmp_path / "nope"), "--out",
                           str(tmp_path / "o"))  # fmt: skip
    assert_one_line_error(code, err, "does not exist")
    code, _, err = run_cli(monkeypatch, capsys, "push", run, "not a repo")
    assert_one_line_error(code, err, "ORG/NAME")
    with pytest.raises(RobenchError, match="neither an exported robench model"):
        robench.load(tmp_path)  # a folder, but no export


def test_push_uploads_the_exported_folder(repro, monkeypatch, capsys):
    import huggingface_hub

    calls = {}

    class FakeApi:
        def create_repo(self, repo, exist_ok):
            calls["repo"] = repo

        def upload_folder(self, repo_id, folder_path):
            from pathlib import Path

            calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    code, _, err = run_cli(monkeypatch, capsys, "push", str(repro / "runs" / "P1F4"), "lab/x")
    assert code == 0, err
    assert calls == {"repo": "lab/x", "files": list(FILES)}

    class Offline(FakeApi):
        def create_repo(self, repo, exist_ok):
            raise ConnectionError("no route to huggingface.co")

    monkeypatch.setattr(huggingface_hub, "HfApi", Offline)
    code, _, err = run_cli(monkeypatch, capsys, "push", str(repro / "runs" / "P1F4"), "lab/x")
    assert_one_line_error(code, err, "push to lab/x failed (ConnectionError")
