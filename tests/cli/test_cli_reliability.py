"""Faults a long-running research job meets, and what robench keeps intact through them.

Crashes mid-write, full disks, two writers on one leaderboard, torn checkpoint pairs, planted
pickles, data of the wrong shape: each leaves the previous good files in place and, at the
command line, gives one line naming the problem and exit code 2.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, assert_one_line_error, leaderboard_row, run_cli, suite_toml

from robench.atomic import atomic_write, write_text_atomic
from robench.data import load_source
from robench.errors import CheckpointError, DataError
from robench.eval.user_model import load_state_dict_file
from robench.leaderboard import read_board, upsert_rows
from robench.models import create
from robench.runs import checkpoint as ckpt
from robench.runs.run_dir import RunDir

from synthetic import make_image_folder

SUITE = suite_toml(
    epochs=2, batch_size=40, eval_n=20, eval_batch_size=20, runs={"P1F4": {"finetune": "F4"}}
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"), train_per_class=12)


# -- atomic writes -----------------------------------------------------------------------


def test_crash_mid_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "board.csv"
    write_text_atomic(path, "good\n")

    def half_then_crash(tmp: Path) -> None:
        tmp.write_text("half a fi")
        raise KeyboardInterrupt  # the process dies here

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_crash)
    assert path.read_text() == "good\n"
    assert [p.name for p in tmp_path.iterdir()] == ["board.csv"]  # no temp file left


def test_checkpoint_torn_between_its_two_files_loads_consistently(tmp_path):
    """Killed between renaming the weights and the JSON: the weights' embedded meta wins."""
    stem = tmp_path / "last"
    model = create("preact_tiny", num_classes=10)
    ckpt.save_checkpoint(
        stem, ckpt.model_tensors(model), {"architecture": "preact_tiny", "epoch": 1}
    )
    old_sidecar = stem.with_suffix(".json").read_text()
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    ckpt.save_checkpoint(
        stem, ckpt.model_tensors(model), {"architecture": "preact_tiny", "epoch": 2}
    )
    stem.with_suffix(".json").write_text(old_sidecar)  # as if the second rename never happened
    tensors, meta = ckpt.load_checkpoint(stem)
    assert meta["epoch"] == 2
    first = next(iter(ckpt.model_tensors(model)))
    assert torch.equal(tensors[first], ckpt.model_tensors(model)[first])


@pytest.mark.slow
def test_disk_full_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(
    monkeypatch, capsys, tmp_path, folder
):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    real_save = ckpt.save_file
    calls = {"n": 0}

    def save_until_full(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:  # epoch 1 writes best_ta, best_ra, last; epoch 2 hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", save_until_full)
    out = tmp_path / "out"
    args = ["train", str(suite), "--out", str(out), "--data-dir", str(folder), "--device", "cpu"]
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert_one_line_error(code, err, "no space left")
    tensors, meta = ckpt.load_checkpoint(RunDir(out / "P1F4").checkpoint("last"))
    assert meta["epoch"] == 1 and tensors
    monkeypatch.setattr(ckpt, "save_file", real_save)  # space freed: the run resumes
    code, out_text, _ = run_cli(monkeypatch, capsys, *args)
    assert code in (0, None) and "resuming after epoch 1" in out_text


def _upsert_many(path: str, prefix: str) -> None:
    for i in range(15):
        upsert_rows(Path(path), [leaderboard_row(f"{prefix}{i}")])


def test_two_processes_upserting_one_board_lose_no_rows(tmp_path):
    path = tmp_path / "pgd20.csv"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_upsert_many, args=(str(path), p)) for p in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    runs = sorted(read_board(path).run)
    assert runs == sorted([f"a{i}" for i in range(15)] + [f"b{i}" for i in range(15)])


# -- safe loading ------------------------------------------------------------------------


class _Planted:
    """Unpickling this runs a shell command: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(monkeypatch, capsys, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pth"
    with open(evil, "wb") as handle:
        pickle.dump({"state_dict": _Planted(marker)}, handle)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_state_dict_file(create("preact_tiny", num_classes=10), evil)
    factory = tmp_path / "factory.py"
    factory.write_text(
        "from robench.models import create\n"
        "def build():\n    return create('preact_tiny', num_classes=10)\n"
    )
    code, _, err = run_cli(
        monkeypatch, capsys, "eval", "--model", f"{factory}:build", "--weights", str(evil),
        "--leaderboard-dir", str(tmp_path / "boards"),
    )  # fmt: skip
    assert_one_line_error(code, err, "never runs pickled code")
    assert not marker.exists()


def test_a_pickle_named_safetensors_is_not_a_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    stem = tmp_path / "last"
    with open(stem.with_suffix(".safetensors"), "wb") as handle:
        pickle.dump(_Planted(marker), handle)
    stem.with_suffix(".json").write_text(json.dumps({"format": ckpt.FORMAT}))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        ckpt.load_checkpoint(stem)
    assert not marker.exists()


def test_no_torch_load_without_weights_only():
    """Every torch.load in robench passes weights_only=True (a grep, but a cheap guarantee)."""
    root = REPO / "robench"
    for path in root.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "torch.load(" in line:
                call = line + path.read_text().splitlines()[number]  # allow one wrapped line
                assert "weights_only=True" in call, f"{path}:{number}"


# -- bad input ---------------------------------------------------------------------------


def test_wrong_image_size_for_cifar10(tmp_path):
    make_image_folder(tmp_path / "big", train_per_class=1, test_per_class=1, size=64)
    with pytest.raises(DataError, match="64x64 images but CIFAR-10 images are 32x32"):
        load_source("cifar10", tmp_path / "big", "test")


def test_empty_data_directory_is_one_line(monkeypatch, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(
        monkeypatch, capsys, "eval", "--model", "x.py:f", "--weights", "w.pt",
        "--data-dir", str(tmp_path / "empty"),
    )  # fmt: skip
    assert_one_line_error(code, err, "x.py does not exist")
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    code, _, err = run_cli(
        monkeypatch, capsys, "train", str(suite), "--out", str(tmp_path / "o"),
        "--data-dir", str(tmp_path / "empty"), "--device", "cpu",
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err and "empty" in err
    assert len(err.strip().splitlines()) == 1, err


def test_finetuning_from_another_architecture_is_refused(monkeypatch, capsys, tmp_path, folder):
    suite = tmp_path / "suite.toml"
    suite.write_text(
        SUITE.replace("[runs.P1F4]", '[pretraining.std-rotation]\ntask = "rotation"\nmode = "std"\n'
                      'model = "preact_small"\n'
                      'epochs = 1\n[runs.P1F4]')
        + '[runs.rot]\npretrain = "std:rotation"\nfinetune = "F3"\n'
    )  # fmt: skip
    code, _, err = run_cli(
        monkeypatch, capsys, "train", str(suite), "--out", str(tmp_path / "o"),
        "--only", "rot", "--data-dir", str(folder), "--device", "cpu",
    )  # fmt: skip
    assert_one_line_error(code, err, "trunk")


def test_weights_for_another_model_are_refused(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(create("preact_small", num_classes=10).state_dict(), weights)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_state_dict_file(create("preact_tiny", num_classes=10), weights)


def test_state_dict_under_model_key_and_dataparallel_prefix_loads(tmp_path):
    source = create("preact_tiny", num_classes=10)
    weights = tmp_path / "w.pt"
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}}, weights)
    target = create("preact_tiny", num_classes=10)
    load_state_dict_file(target, weights)
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key])


def test_out_of_range_override_is_one_line(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(
        monkeypatch, capsys, "eval", str(tmp_path), "--eps", "300/255",
    )  # fmt: skip
    assert_one_line_error(code, err, "outside [0, 1]")


def test_image_folder_with_an_unreadable_file(tmp_path):
    root = make_image_folder(tmp_path / "d", train_per_class=1, test_per_class=2)
    bad = next((root / "test").rglob("*.png"))
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match=bad.name):
        load_source("imagefolder", root, "test")


def test_numpy_is_not_unpickled_from_flag_files(tmp_path):
    from robench.runs import FlagStore

    flag_file = FlagStore(tmp_path).file("pgd", {"a": 1}, 4)
    np.save(flag_file.path, np.array([_Planted(tmp_path / "pwned")], dtype=object))
    assert len(flag_file.load()) == 0  # refused (allow_pickle=False): recomputed instead
    assert not (tmp_path / "pwned").exists()
