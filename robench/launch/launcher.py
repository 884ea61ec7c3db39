"""Launching a reproduction's DAG (local or SLURM), and the status view of one.

`launch` records what it launched in DIR/launch/plan.json (the suite, the selection), so
`robench status DIR` knows the DAG without being told the suite again.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from rich.text import Text

from robench.atomic import check_output_dir, write_json_atomic
from robench.config import Suite, load_suite
from robench.config.launcher import LauncherConfig
from robench.errors import RobenchError
from robench.launch.jobs import JobSpec, reproduction_jobs
from robench.launch.state import LaunchState

PLAN = "plan.json"
SETTLED = {"done", "failed", "cancelled", "stopped", "not submitted"}


def launch(
    suite: Suite,
    out: Path,
    only: tuple[str, ...],
    *,
    launcher: str,
    parallel: int,
    config: LauncherConfig,
    device: str,
    data_dir: str | None,
    precision: str,
    checkpoint_every: int,
    console: Console,
    log: tuple[str, ...] = (),
) -> None:
    if launcher == "local" and config.gpus_per_job > 1:  # not silently one GPU per job
        raise RobenchError(
            f"--gpus-per-job {config.gpus_per_job} is for --launcher slurm (DDP in a job); "
            "--launcher local runs one job per GPU (torchrun for DDP on one machine)"
        )
    check_output_dir(out, "--out")
    out = out.resolve()  # jobs run elsewhere (other nodes, other working directories)
    jobs = reproduction_jobs(suite, only)
    spec = JobSpec(
        suite=str(Path(suite.path).resolve()),
        out=str(out),
        job="",
        only=only,
        device=device,
        data_dir=None if data_dir is None else str(Path(data_dir).resolve()),
        precision=precision,
        checkpoint_every=checkpoint_every,
        log=log,
    )
    state = LaunchState(out)
    write_json_atomic(state.folder / PLAN, {"suite": suite.path, "only": list(only)})

    def say(line: str) -> None:
        console.print(Text(line), soft_wrap=True)

    if launcher == "local":
        from robench.launch.local import run_local

        gpus = torch.cuda.device_count() if device != "cpu" else 0
        outcome = run_local(jobs, spec, parallel, gpus=gpus, threads=config.cpus_per_job, say=say)
        say(
            f"{len(outcome.done)} job(s) done, {len(outcome.already)} done before, "
            f"{len(outcome.failed)} failed, {len(outcome.skipped)} not started; "
            f"`robench status {out}` for details"
        )
        if outcome.failed:
            logs = state.folder / "logs"
            raise RobenchError(f"job(s) failed: {', '.join(outcome.failed)} (logs in {logs})")
        return
    from robench.launch.slurm import submit_slurm

    ids = submit_slurm(jobs, spec, config, say=say)
    say(f"{len(ids)} job(s) in the queue; `robench status {out} --watch` to follow them")


def status_view(out: Path, suite_name: str | None) -> tuple[Table, bool]:
    """The status table of `out`, and whether every job has settled (done/failed/stopped)."""
    from robench.launch.status import job_statuses, status_table

    suite, only = _launched_suite(out, suite_name)
    statuses = job_statuses(out, suite, reproduction_jobs(suite, only))
    settled = all(s.state in SETTLED for s in statuses)
    return status_table(statuses, f"{out} ({suite.name})"), settled


def _launched_suite(out: Path, given: str | None) -> tuple[Suite, tuple[str, ...]]:
    plan = LaunchState(out).folder / PLAN
    if given is not None:
        return load_suite(given), ()
    if plan.is_file():
        recorded = json.loads(plan.read_text())
        return load_suite(recorded["suite"]), tuple(recorded.get("only", ()))
    for config in sorted((out / "runs").glob("*/config.json")):  # a sequential reproduction
        suite = (json.loads(config.read_text()).get("suite") or {}).get("path")
        if suite:
            return load_suite(suite), ()
    raise RobenchError(f"{out}: no launch record and no run with a suite; pass --suite")
