"""The command line as a user meets it: bad input gives one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import torch
from helpers import assert_one_line_error, run_cli, suite_toml

from robench.attacks import PGD
from robench.data import make_splits
from robench.data.convert import to_float_chw
from robench.flags import attack_generator
from robench.runs.checkpoint import load_model_checkpoint
from robench.runs.run_dir import RunDir
from robench.runtime import Runtime

from synthetic import make_image_folder

SUITE = suite_toml()  # the tiny protocol; runs P1F3 and P1F4


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"), train_per_class=20)


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    return path


def test_missing_data_directory(monkeypatch, capsys, suite_file, tmp_path):
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "train",
        str(suite_file),
        "--out",
        str(tmp_path / "o"),
        "--data-dir",
        str(tmp_path / "nowhere"),
    )
    assert_one_line_error(code, err, "nowhere")


def test_unknown_model(monkeypatch, capsys, tmp_path, folder):
    path = tmp_path / "s.toml"
    path.write_text(SUITE.replace("preact_tiny", "resnet9000"))
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "train",
        str(path),
        "--out",
        str(tmp_path / "o"),
        "--data-dir",
        str(folder),
    )
    assert_one_line_error(code, err, "resnet9000")
    assert "preact_resnet50v2" in err


def test_malformed_suite(monkeypatch, capsys, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE.replace("epochs = 1", "epochs = [1"))
    code, _, err = run_cli(monkeypatch, capsys, "train", str(path), "--out", str(tmp_path))
    assert_one_line_error(code, err, "not valid TOML")


def test_eval_of_a_directory_that_is_no_run(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(
        monkeypatch, capsys, "eval", str(tmp_path), "--leaderboard-dir", str(tmp_path)
    )
    assert_one_line_error(code, err, "not a robench run directory")


def test_leaderboard_show_of_a_non_leaderboard(monkeypatch, capsys, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    code, _, err = run_cli(monkeypatch, capsys, "leaderboard", "show", str(path))
    assert_one_line_error(code, err, "not a robench leaderboard")


@pytest.mark.slow
def test_reproduce_then_eval_writes_keyed_rows(monkeypatch, capsys, suite_file, tmp_path, folder):
    out = tmp_path / "out"
    code, _, _ = run_cli(
        monkeypatch,
        capsys,
        "reproduce",
        str(suite_file),
        "--out",
        str(out),
        "--data-dir",
        str(folder),
        "--device",
        "cpu",
    )
    assert code == 0
    board = pd.read_csv(out / "leaderboards" / "pgd20.csv")
    assert sorted(board.run) == ["P1F3", "P1F4"]
    row = board.set_index("run").loc["P1F4"]
    assert (row.scenario, row.attack, row.eps, row.steps, row.n_eval) == (
        "P1F4",
        "pgd-linf",
        "8/255",
        20,
        40,
    )
    assert row.dataset.startswith("image folder") and row.device == "cpu" and row.robench_version
    # TA and RA recomputed here from the checkpoint the row names, image for image: the first
    # 40 test images, one batch (eval_batch_size 40), PGD-20 seeded as batch 0 of seed 0.
    model, _ = load_model_checkpoint(RunDir(out / "runs" / "P1F4").checkpoint(row.checkpoint))
    test = make_splits("imagefolder", folder).test.first(40)
    x, y = to_float_chw(test.images), torch.from_numpy(test.labels)
    attack = PGD(8 / 255, 2 / 255, 20)
    x_adv = attack.perturb(
        model.eval(), x, y, attack_generator(Runtime.select("cpu"), attack, 0, 0)
    )
    with torch.no_grad():
        clean = model(x).argmax(1) == y
        robust = clean & (model(x_adv).argmax(1) == y)
    assert round(row.ta * 40 / 100) == int(clean.sum())
    assert round(row.ra * 40 / 100) == int(robust.sum())
    # Another protocol (n) is another row; the same protocol again replaces its row.
    for _ in range(2):
        code, _, _ = run_cli(
            monkeypatch,
            capsys,
            "eval",
            str(out / "runs" / "P1F3"),
            "--n",
            "20",
            "--leaderboard-dir",
            str(out / "leaderboards"),
            "--data-dir",
            str(folder),
        )
        assert code == 0
    board = pd.read_csv(out / "leaderboards" / "pgd20.csv")
    assert len(board) == 3 and sorted(board.n_eval) == [20, 40, 40]


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "robench", "list", "models"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "preact_resnet50v2" in result.stdout


@pytest.mark.slow
def test_transfer_matrix_and_plot_commands(monkeypatch, capsys, suite_file, tmp_path, folder):
    out = tmp_path / "out"
    code, _, _ = run_cli(
        monkeypatch,
        capsys,
        "reproduce",
        str(suite_file),
        "--out",
        str(out),
        "--data-dir",
        str(folder),
    )
    assert (
        code == 0 and (out / "report.html").is_file() and (out / "figures" / "ta_ra.png").is_file()
    )
    # the corruption contact sheet of the first test image, and the baselines' training curves
    for figure in ("corruptions_preview.png", "training_curves.png"):
        assert (out / "figures" / figure).is_file(), figure
    # The claims were judged at the end, into claims.csv and the report, with intervals.
    claims = pd.read_csv(out / "claims.csv")
    assert list(dict.fromkeys(claims["claim"])) == list("abcdefg")
    report = (out / "report.html").read_text()
    assert '<section id="claims">' in report and "\u00b1" in report
    rows = pd.read_csv(out / "leaderboards" / "pgd20.csv")
    assert (rows["ra_lo"] <= rows["ra"]).all() and (rows["ra"] <= rows["ra_hi"]).all()
    assert set(rows["precision"]) == {"fp32"} and set(rows["schema_version"]) == {2}
    runs = [str(out / "runs" / name) for name in ("P1F3", "P1F4")]
    # Two run directories evaluated on the same images: a paired test from their flags.
    code, stdout, _ = run_cli(monkeypatch, capsys, "compare", *runs)
    assert code == 0 and "exact McNemar" in stdout and "n=" in stdout
    code, stdout, _ = run_cli(
        monkeypatch,
        capsys,
        "transfer-matrix",
        *runs,
        "--out",
        str(tmp_path / "t"),
        "--data-dir",
        str(folder),
    )
    asr = pd.read_csv(tmp_path / "t" / "transfer_asr.csv", index_col=0)
    board = pd.read_csv(out / "leaderboards" / "pgd20.csv").set_index("run")
    assert code == 0 and asr.shape == (2, 2)
    for name in ("P1F3", "P1F4"):
        assert asr.loc[name, name] == pytest.approx(1 - board.loc[name, "ra"] / 100, abs=1e-6)
    assert (tmp_path / "t" / "transfer_asr.png").is_file() and "transfer_overlap.png" in stdout
    code, _, _ = run_cli(
        monkeypatch,
        capsys,
        "plot",
        str(out / "leaderboards" / "pgd20.csv"),
        "--out",
        str(tmp_path / "fig1.png"),
    )
    assert code == 0 and (tmp_path / "fig1.png").stat().st_size > 10_000
