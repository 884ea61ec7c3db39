"""`robench status DIR`: every job of a reproduction, where it stands, read from the disk.

A job's state comes from DIR/launch/ (done and failed markers the jobs write, the launchers'
submissions) and, for SLURM jobs, from `squeue` only (no `sacct`: clusters without slurmdbd
have no accounting). A training job's progress (epoch e/E, the last validation TA/RA, img/s,
ETA) comes from its run directory, so the table works for sequential and local runs too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from robench.config import Suite
from robench.launch.dag import Job
from robench.launch.state import LaunchState
from robench.runs.metrics_log import read_metrics
from robench.runs.run_dir import RunDir
from robench.train.lifecycle import PRETRAIN_FOLDER

STYLES = {"done": "green", "running": "cyan", "queued": "blue", "failed": "bold red"}


@dataclass(frozen=True)
class JobStatus:
    job: str
    state: str  # done, running, queued, failed, cancelled, stopped, not submitted
    epoch: str = ""
    val_ta: float | None = None
    val_ra: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = None
    cluster_id: str = ""
    error: str = ""
    log: str = ""


def job_statuses(out: Path, suite: Suite, jobs: list[Job]) -> list[JobStatus]:
    from robench.launch.slurm import queue_states

    state = LaunchState(out)
    submitted = state.submitted()
    slurm_ids = [e["cluster_id"] for e in submitted.values() if e.get("launcher") == "slurm"]
    queue = queue_states(slurm_ids)
    statuses: dict[str, JobStatus] = {}
    for job in jobs:  # in DAG order: what a job waits for is known before it
        status = _status(job, out, suite, state, submitted.get(job.id, {}), queue)
        blocked = [d for d in job.after if statuses[d].state in ("failed", "cancelled")]
        if blocked and status.state in ("stopped", "not submitted"):
            status = replace(status, state="cancelled", error=f"waits for {blocked[0]}, failed")
        statuses[job.id] = status
    return list(statuses.values())


def _status(
    job: Job, out: Path, suite: Suite, state: LaunchState, entry: dict, queue: dict[str, str]
) -> JobStatus:
    progress = _progress(job, out, suite)
    run_done = progress.pop("finished", False)
    cluster_id = str(entry.get("cluster_id", ""))
    log = str(entry.get("log", ""))
    failure = state.failure(job.id)
    if state.done(job.id) or (run_done and not entry and job.kind == "train"):
        what = "done"
    elif entry.get("launcher") == "slurm" and cluster_id in queue:
        slurm = queue[cluster_id]
        what = {"PENDING": "queued", "RUNNING": "running"}.get(slurm, slurm.lower())
    elif entry.get("launcher") == "local" and _alive(cluster_id):
        what = "running"
    elif failure is not None:
        what = "failed"
    elif entry:
        what = "stopped"  # submitted, gone from the queue, no outcome: killed, cancelled
    else:
        what = "stopped" if progress.get("epoch") else "not submitted"
    error = str(failure["error"]) if failure is not None and what == "failed" else ""
    return JobStatus(job.id, what, cluster_id=cluster_id, error=error, log=log, **progress)


def _progress(job: Job, out: Path, suite: Suite) -> dict[str, Any]:
    """epoch e/E, the last validation TA/RA, img/s and ETA of a training job's run."""
    if not job.trains:
        return {}
    folder = out / "runs" / (PRETRAIN_FOLDER if job.kind == "pretrain" else "") / job.target
    run = RunDir(folder)
    records = read_metrics(run.metrics)
    epochs = job.epochs
    last = records[-1] if records else {}
    done = len(records)
    seconds = last.get("seconds") or last.get("train_seconds")
    remaining = max(epochs - done, 0)
    return {
        "finished": run.is_finished(),
        "epoch": f"{done}/{epochs}" if records or run.is_finished() else "",
        "val_ta": last.get("val_ta"),
        "val_ra": last.get("val_ra"),
        "images_per_s": last.get("train_images_per_s"),
        "eta_s": remaining * float(seconds) if seconds and remaining else None,
    }


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def status_table(statuses: list[JobStatus], title: str) -> Table:
    table = Table(title=Text(title))
    for column in ("job", "state", "epoch", "val TA %", "val RA %", "img/s", "ETA", "job id"):
        numeric = column in ("val TA %", "val RA %", "img/s", "ETA")
        table.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for s in statuses:
        table.add_row(
            Text(s.job),
            Text(s.state, style=STYLES.get(s.state, "")),
            s.epoch,
            _number(s.val_ta),
            _number(s.val_ra),
            _number(s.images_per_s, 0),
            _duration(s.eta_s),
            Text(s.cluster_id),
        )
    failed = [s for s in statuses if s.state == "failed"]
    if failed:
        table.caption = Text(
            "\n".join(f"{s.job}: {s.error}  (log: {s.log or '-'})" for s in failed),
            style="red",
        )
    return table


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60}h{minutes % 60:02d}"
    return f"{minutes}m{int(seconds % 60):02d}"
