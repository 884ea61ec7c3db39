"""`--launcher slurm` on a real SLURM cluster (CI: `.ci/slurm.sh up`, one node on loopback).

The same boards as the sequential run; a rerun submits nothing; a job requeued in the middle
of training finishes bit-identical to an uninterrupted run; a failed job is in `status` with
its log. Skipped where no SLURM answers (no `sbatch` on PATH, or `sinfo` fails): CI always
has one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
from helpers import launch_suite_toml, quiet_session, run_cli, same_boards

from robench.config import load_suite
from robench.launch.launcher import status_view
from robench.launch.slurm import queue_states
from robench.launch.state import LaunchState
from robench.launch.status import job_statuses
from robench.runs import checkpoint as ckpt
from robench.workflow import reproduce, train

from synthetic import make_image_folder


def _cluster_answers() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    done = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, check=False)
    return done.returncode == 0 and bool(done.stdout.strip())


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _cluster_answers(), reason="no SLURM cluster (bash .ci/slurm.sh up)"),
]
WAIT_S = 300


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm")
    data = make_image_folder(root / "data", train_per_class=8, test_per_class=4)
    (root / "suite.toml").write_text(launch_suite_toml())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each SLURM job (one CPU: OMP_NUM_THREADS=1)
    try:
        reproduce(quiet_session(str(data)), load_suite(root / "suite.toml"), root / "seq", None)
    finally:
        torch.set_num_threads(threads)
    return root, data


def _submit(monkeypatch, capsys, root, data, out, suite="suite.toml", *extra):
    return run_cli(monkeypatch, capsys, "reproduce", str(root / suite), "--out", str(out),
                   "--launcher", "slurm", "--cpus-per-job", "1", "--time", "10",
                   "--data-dir", str(data), "--device", "cpu", *extra)  # fmt: skip


def _wait(out, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, settled = status_view(out, None)
        if settled:
            return
        time.sleep(1)
    pytest.fail(f"the jobs of {out} did not finish in {timeout} s")


def test_slurm_jobs_give_the_sequential_boards_and_a_rerun_submits_nothing(
    setup, monkeypatch, capsys
):
    root, data = setup
    out = root / "cluster"
    code, text, err = _submit(monkeypatch, capsys, root, data, out)
    assert code == 0, err
    assert "queued   train.rot-P3F4" in text and "after afterok:" in text
    _wait(out)
    suite = load_suite(root / "suite.toml")
    from robench.launch import reproduction_jobs

    states = {s.job: s.state for s in job_statuses(out, suite, reproduction_jobs(suite, None))}
    assert set(states.values()) == {"done"}, states
    same_boards(root / "seq" / "leaderboards", out / "leaderboards")
    before = LaunchState(out).submitted()
    code, text, err = _submit(monkeypatch, capsys, root, data, out)
    assert code == 0, err
    assert "queued" not in text and text.count("done ") == 4
    assert LaunchState(out).submitted() == before  # nothing submitted again


@pytest.mark.parametrize("interrupt", ["scontrol requeue", "preemption signal"])
def test_a_requeued_training_job_finishes_bit_identical(
    setup, tmp_path, monkeypatch, capsys, interrupt
):
    """Requeued by the cluster (`scontrol requeue`: the job is killed and starts again), or
    preempted: SLURM's USR2 reaches submitit's handler, which checkpoints the job's
    submission and requeues it itself. Either way training resumes from its last mid-epoch
    checkpoint and ends bit-identical to the uninterrupted run."""
    root, _ = setup
    long = {"finetune": "F4", "epochs": 5, "train_subset": 72}
    (root / "long.toml").write_text(launch_suite_toml(long=long))
    slow_data = make_image_folder(tmp_path / "data", train_per_class=30, test_per_class=4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the uninterrupted reference
        suite = load_suite(root / "long.toml")
        train(quiet_session(str(slow_data), checkpoint_every=1), suite, tmp_path / "ref", ["long"])
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "cluster"
    code, _, err = _submit(monkeypatch, capsys, root, slow_data, out, "long.toml",
                           "--only", "long", "--checkpoint-every", "1")  # fmt: skip
    assert code == 0, err
    job_id = LaunchState(out).submitted()["train.long"]["cluster_id"]
    metrics = out / "runs" / "long" / "metrics.jsonl"
    deadline = time.monotonic() + WAIT_S
    while not (metrics.is_file() and metrics.read_text().strip()):  # mid-training
        assert time.monotonic() < deadline, "the job never started training"
        time.sleep(0.2)
    if interrupt == "scontrol requeue":
        subprocess.run(["scontrol", "requeue", job_id], check=True)
    else:  # what a preempting scheduler sends first (submitit's --signal=USR2@90)
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    # SLURM holds a requeued job back for a while (BeginTime); once it is back in the queue,
    # let it start at once
    while queue_states([job_id]).get(job_id) != "PENDING":
        assert time.monotonic() < deadline, "the requeued job never came back to the queue"
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    _wait(out)
    shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True)
    assert "Restarts=1" in shown.stdout, shown.stdout  # it was requeued, and ran again
    if interrupt == "preemption signal":
        log = Path(LaunchState(out).submitted()["train.long"]["log"]).read_text()
        # submitit's handler took it (and with --time 10 calls it a time-out: its guaranteed
        # walltime is min(80%, time - 10 min)); both attempts are in the one log
        assert "Caught signal SIGUSR2" in log and log.count("Starting with") == 2, log[-2000:]
    a, _ = ckpt.load_checkpoint(tmp_path / "ref" / "long" / "checkpoints" / "last")
    b, meta = ckpt.load_checkpoint(out / "runs" / "long" / "checkpoints" / "last")
    assert meta["epoch"] == 5 and all(torch.equal(a[k], b[k]) for k in a)


def test_a_failed_job_is_in_status_with_its_log(setup, monkeypatch, capsys):
    root, data = setup
    broken = {"finetune": "F3", "train_subset": 100000}  # more images than there are
    (root / "broken.toml").write_text(launch_suite_toml(broken=broken))
    out = root / "broken"
    code, _, err = _submit(monkeypatch, capsys, root, data, out, "broken.toml",
                           "--only", "broken")  # fmt: skip
    assert code == 0, err
    _wait(out)
    code, text, _ = run_cli(monkeypatch, capsys, "status", str(out))
    flat = "".join(text.split())  # the table wraps long cells
    assert "failed" in text and "DataError:train_subset=100000" in flat
    log = LaunchState(out).submitted()["train.broken"]["log"]
    assert log in flat and "train_subset=100000" in Path(log).read_text()
    failed = json.loads((out / "launch" / "failed" / "train.broken.json").read_text())
    assert failed["error"].startswith("DataError")


def _gpus_on_the_node() -> int:
    """GPUs the cluster's node advertises (CI's one-node cluster: two count-only GRES GPUs)."""
    done = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True)
    gres = done.stdout.strip()
    return int(gres.split(":")[-1].split("(")[0]) if gres.startswith("gpu:") else 0


def test_a_job_with_two_gpus_trains_under_ddp_across_two_tasks(setup, tmp_path, monkeypatch,
                                                                capsys):  # fmt: skip
    """`--gpus-per-job 2`: two SLURM tasks, submitit's environment made torchrun's, robench's
    DDP (gloo here, on the CPU; NCCL on a GPU node) training what one process trains.

    Standard training (F3), so no PGD step turns a rounding difference into a pixel step;
    the tolerance is the torchrun test's (tests/distributed), for the same reason: the two
    ranks sum their gradients in another order than one process."""
    if _gpus_on_the_node() < 2:
        pytest.skip("the cluster's node advertises fewer than 2 GPUs (bash .ci/slurm.sh up)")
    root, data = setup
    (root / "ddp.toml").write_text(launch_suite_toml(ddp={"finetune": "F3"}))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # one process, one thread: the reference
        train(quiet_session(str(data)), load_suite(root / "ddp.toml"), tmp_path / "ref", ["ddp"])
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "cluster"
    code, text, err = _submit(monkeypatch, capsys, root, data, out, "ddp.toml",
                              "--only", "ddp", "--gpus-per-job", "2")  # fmt: skip
    assert code == 0, err + text
    _wait(out)
    record = json.loads((out / "runs" / "ddp" / "config.json").read_text())
    assert record["runtime"]["world_size"] == 2, record["runtime"]
    log = Path(LaunchState(out).submitted()["train.ddp"]["log"]).read_text()
    assert (out / "launch" / "done" / "train.ddp.json").is_file(), log
    a, _ = ckpt.load_checkpoint(tmp_path / "ref" / "ddp" / "checkpoints" / "last")
    b, _ = ckpt.load_checkpoint(out / "runs" / "ddp" / "checkpoints" / "last")
    assert a.keys() == b.keys()
    for key in a:
        if key.endswith("momentum_buffer") or not a[key].is_floating_point():
            continue
        diff = (a[key].double() - b[key].double()).abs().max().item()
        assert diff <= 5e-3 * max(1.0, a[key].abs().max().item()), (key, diff)
