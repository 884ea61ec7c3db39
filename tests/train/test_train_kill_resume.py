"""Runs survive being killed: mid-epoch checkpoints, `kill -9` and rerun, skipped finished work.

The reference for "survived" is always an uninterrupted run with the same seed: the resumed
run must end with bit-identical weights and the same metrics (timings aside).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import suite_toml, train_env

from robench.config import load_suite
from robench.runs import checkpoint as ckpt
from robench.runs.run_dir import RunDir
from robench.runtime import FAST_PATH_ON_CPU
from robench.train import loop as loop_mod
from robench.train.finetune import train_run
from robench.train.pretrain import pretrain_run

from synthetic import make_image_folder

SUITE = suite_toml(
    epochs=2,
    batch_size=16,
    lr=0.05,
    val_ra_subset=20,
    train_attack={"steps": 2},
    val_attack={"steps": 2},
    pretrain_protocol={"epochs": 2, "batch_size": 16, "val_subset": 20, "attack": {"steps": 1}},
    runs={"at": {"finetune": "F4"}, "rot": {"pretrain": "adv:rotation", "finetune": "F4"}},
)

pytestmark = pytest.mark.slow  # every test here trains (or kills) runs

TIMING_KEYS = {"seconds", "train_images_per_s", "val_seconds"}


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"), train_per_class=24)


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    return path


def _metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING_KEYS} for x in lines]


def _assert_same_run(a: Path, b: Path, stem: str = "checkpoints/last") -> None:
    wa, _ = ckpt.load_checkpoint(a / stem)
    wb, _ = ckpt.load_checkpoint(b / stem)
    assert wa.keys() == wb.keys()
    differing = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differing, f"resumed run differs in {differing[:5]}"
    assert _metrics(a) == _metrics(b)


def _interrupt_after_partial_checkpoints(monkeypatch, how_many: int) -> None:
    """Let `how_many` mid-epoch checkpoints be written, then stop the run like a crash would."""
    real = loop_mod.run_epoch
    saved = {"n": 0}

    def run_epoch(*args, on_checkpoint=None, **kwargs):
        def save_then_maybe_die(progress):
            on_checkpoint(progress)
            saved["n"] += 1
            if saved["n"] == how_many:
                raise Interrupted

        return real(*args, on_checkpoint=save_then_maybe_die, **kwargs)

    for module in ("robench.train.finetune", "robench.train.pretrain"):
        monkeypatch.setattr(f"{module}.run_epoch", run_epoch)


@pytest.mark.parametrize(
    "fast_path",
    # the CUDA fast path forced on the CPU (bf16 autocast, channels_last, torch.compile with
    # inductor, as on a GPU): a resume must be as exact under it
    [None, pytest.param("1", marks=pytest.mark.fastpath, id="fast-path-inductor")],
)
def test_finetuning_resumes_mid_epoch_exactly(suite_file, folder, tmp_path, monkeypatch, fast_path):
    if fast_path is not None:
        monkeypatch.setenv(FAST_PATH_ON_CPU, fast_path)
    suite = load_suite(suite_file)
    env = train_env(folder, suite, checkpoint_every=4)
    train_run(suite.runs["at"], tmp_path / "straight", env)
    # 240 training images / 16 = 15 steps an epoch: checkpoints at 4, 8, 12; die in epoch 2
    _interrupt_after_partial_checkpoints(monkeypatch, how_many=5)
    with pytest.raises(Interrupted):
        train_run(suite.runs["at"], tmp_path / "resumed", env)
    partial = RunDir(tmp_path / "resumed" / "at").partial_checkpoint
    _, meta = ckpt.load_checkpoint(partial)
    assert (meta["epoch"], meta["progress"]["step"]) == (2, 8)
    monkeypatch.undo()
    if fast_path is not None:
        monkeypatch.setenv(FAST_PATH_ON_CPU, fast_path)
        env = train_env(folder, suite, checkpoint_every=4)
        assert env.runtime.compile and env.runtime.precision == "bf16"
    train_run(suite.runs["at"], tmp_path / "resumed", env)
    _assert_same_run(tmp_path / "straight" / "at", tmp_path / "resumed" / "at")
    assert not ckpt.checkpoint_paths(partial)[0].exists()  # removed once the epoch ended


def test_pretraining_resumes_mid_epoch_exactly(suite_file, folder, tmp_path, monkeypatch):
    suite = load_suite(suite_file)
    spec = suite.pretrainings([suite.runs["rot"]])[0]
    env = train_env(folder, suite, checkpoint_every=3)
    pretrain_run(spec, tmp_path / "straight", env)
    _interrupt_after_partial_checkpoints(monkeypatch, how_many=2)
    with pytest.raises(Interrupted):
        pretrain_run(spec, tmp_path / "resumed", env)
    monkeypatch.undo()
    pretrain_run(spec, tmp_path / "resumed", env)
    _assert_same_run(tmp_path / "straight" / spec.name, tmp_path / "resumed" / spec.name, "trunk")


def _robench(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "robench", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill_when(proc: subprocess.Popen, ready, delay: float, timeout: float = 300) -> bool:
    """SIGKILL `proc` `delay` seconds after `ready()` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def test_kill_9_train_then_rerun_equals_uninterrupted(suite_file, folder, tmp_path):
    common = ["--data-dir", str(folder), "--device", "cpu", "--checkpoint-every", "3"]
    straight = _robench("train", str(suite_file), "--out", "straight", "--only", "at", *common,
                        cwd=tmp_path)  # fmt: skip
    assert straight.wait() == 0, straight.stdout.read()

    run = tmp_path / "killed" / "at"
    checkpoints = run / "checkpoints"
    killed = False
    for attempt in range(3):  # a random moment: retry if the run happened to finish first
        proc = _robench("train", str(suite_file), "--out", "killed", "--only", "at", *common,
                        cwd=tmp_path)  # fmt: skip
        ready = lambda: checkpoints.is_dir() and any(checkpoints.iterdir())  # noqa: E731
        killed = _kill_when(proc, ready, delay=random.Random(attempt).uniform(0.0, 1.0))
        if killed:
            break
    assert killed, "could not kill the run before it finished"
    assert not RunDir(run).is_finished()
    rerun = _robench("train", str(suite_file), "--out", "killed", "--only", "at", *common,
                     cwd=tmp_path)  # fmt: skip
    output = rerun.stdout.read()
    assert rerun.wait() == 0, output
    assert "resuming" in output
    _assert_same_run(tmp_path / "straight" / "at", run)


def test_kill_9_reproduce_skips_finished_runs(suite_file, folder, tmp_path):
    common = ["--data-dir", str(folder), "--device", "cpu", "--checkpoint-every", "3"]
    first = tmp_path / "out" / "runs" / "at" / "result.json"
    proc = _robench("reproduce", str(suite_file), "--out", "out", *common, cwd=tmp_path)
    ready = first.is_file
    assert _kill_when(proc, ready, delay=0.3), "reproduce finished before it could be killed"
    finished_at = first.stat().st_mtime_ns
    rerun = _robench("reproduce", str(suite_file), "--out", "out", *common, cwd=tmp_path)
    output = rerun.stdout.read()
    assert rerun.wait() == 0, output
    assert "at: already trained" in output
    assert first.stat().st_mtime_ns == finished_at  # not redone
    board = pd.read_csv(tmp_path / "out" / "leaderboards" / "pgd20.csv")
    assert set(board["run"]) == {"at", "rot"}
