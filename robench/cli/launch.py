"""reproduce (in this process, here K jobs at a time, or on SLURM), status, and the job runner.

`robench job` is what the local launcher starts per job; it is hidden from --help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from robench.cli.common import (
    CheckpointEvery,
    DataDir,
    Device,
    Log,
    Precision,
    app,
    console,
    session_for,
)
from robench.errors import RobenchError

LAUNCHERS = ("sequential", "local", "slurm")
Opt = typer.Option


@app.command()
def reproduce(
    suite: Annotated[str, typer.Argument(help="Suite TOML file, or a shipped suite's name.")],
    out: Annotated[Path, Opt(help="Gets runs/ and leaderboards/ (on a shared filesystem).")],
    only: Annotated[list[str] | None, Opt(help="Only these runs.")] = None,
    precision: Precision = "fp32",
    data_dir: DataDir = None,
    device: Device = "auto",
    checkpoint_every: CheckpointEvery = 100,
    log: Log = None,
    launcher: Annotated[str, Opt(help="sequential (here, in order), local or slurm.")] = (
        "sequential"
    ),
    jobs: Annotated[int, Opt(help="--launcher local: jobs at a time.")] = 1,
    launcher_config: Annotated[
        Path | None, Opt(help="TOML with the launcher settings ([launcher] or top level).")
    ] = None,
    partition: Annotated[str | None, Opt(help="SLURM partition.")] = None,
    gpus_per_job: Annotated[int | None, Opt(help="GPUs per job (> 1: DDP in the job).")] = None,
    cpus_per_job: Annotated[int | None, Opt(help="CPUs per job.")] = None,
    mem: Annotated[str | None, Opt(help="Memory per job, e.g. 32G.")] = None,
    time: Annotated[int | None, Opt("--time", help="Time limit per job, minutes.")] = None,
    account: Annotated[str | None, Opt(help="SLURM account.")] = None,
    qos: Annotated[str | None, Opt(help="SLURM QOS.")] = None,
    constraint: Annotated[str | None, Opt(help="SLURM constraint, e.g. a100.")] = None,
    setup: Annotated[
        list[str] | None, Opt(help="A line run before each job, e.g. 'module load cuda' (repeat).")
    ] = None,
    max_jobs: Annotated[int | None, Opt(help="SLURM: jobs running at once (0: no limit).")] = None,
    dry_run: Annotated[bool, Opt(help="Print the job DAG and its cost; run nothing.")] = False,
    plan_gpus: Annotated[str, Opt(help="--dry-run: wall time on these GPU counts.")] = "1,8,64",
    throughput_csv: Annotated[
        list[Path] | None, Opt(help="--dry-run: benchmark CSVs with img/s (benchmarks/results/).")
    ] = None,
    tflops: Annotated[
        float, Opt(help="--dry-run: sustained TFLOPS assumed where no img/s was measured.")
    ] = 100.0,
) -> None:
    """Train every run of a suite, evaluate each, and write the leaderboards; here, K jobs at
    a time (--launcher local) or as a chain of SLURM jobs (--launcher slurm)."""
    from robench.config import load_suite
    from robench.config.launcher import load_launcher
    from robench.runtime import check_precision

    check_precision(precision)
    if launcher not in LAUNCHERS:
        raise RobenchError(f"--launcher {launcher!r} must be one of {', '.join(LAUNCHERS)}")
    loaded = load_suite(suite)
    config = load_launcher(Path(loaded.path), launcher_config).override(
        partition=partition,
        gpus_per_job=gpus_per_job,
        cpus_per_job=cpus_per_job,
        mem=mem,
        time_minutes=time,
        account=account,
        qos=qos,
        constraint=constraint,
        setup=tuple(setup or ()),
        max_jobs=max_jobs,
    )
    if dry_run:
        _print_plan(loaded, out, only, plan_gpus, throughput_csv, tflops)
        return
    if launcher == "sequential":
        from robench.workflow import reproduce as run_reproduce

        session = session_for(device, data_dir, checkpoint_every, loaded, log)
        done = run_reproduce(session, loaded, out, only, precision=precision)
        console.print(f"leaderboards: {done.boards.folder}", soft_wrap=True, markup=False)
        return
    from robench.launch.launcher import launch
    from robench.train.loggers import check_loggers

    launch(
        loaded,
        out,
        tuple(only or ()),
        launcher=launcher,
        parallel=jobs,
        config=config,
        device=device,
        data_dir=data_dir,
        precision=precision,
        checkpoint_every=checkpoint_every,
        log=tuple(check_loggers(log)),  # here, before anything is submitted
        console=console,
    )


def _print_plan(suite, out, only, plan_gpus, throughput_csv, tflops) -> None:
    from robench.launch.jobs import reproduction_jobs
    from robench.launch.plan import job_costs, plan_tables

    try:
        gpus = tuple(int(g) for g in plan_gpus.split(","))
    except ValueError:
        raise RobenchError(f"--plan-gpus {plan_gpus!r}: numbers with commas, e.g. 1,8,64") from None
    if not gpus or min(gpus) < 1:
        raise RobenchError(f"--plan-gpus {plan_gpus!r}: each count must be >= 1")
    csvs = list(throughput_csv or [])
    for path in csvs:
        if not path.is_file():
            raise RobenchError(f"--throughput-csv {path} does not exist")
    costs = job_costs(reproduction_jobs(suite, only), out=out, benchmark_csvs=csvs, tflops=tflops)
    jobs_table, totals = plan_tables(costs, gpus, f"robench reproduce {suite.name}: the plan")
    console.print(jobs_table)
    console.print(totals)


@app.command()
def status(
    out: Annotated[Path, typer.Argument(help="A reproduction's output folder.")],
    suite: Annotated[
        str | None, Opt(help="Its suite (default: the one it was launched with).")
    ] = None,
    watch: Annotated[bool, Opt(help="Refresh until every job is done or failed.")] = False,
    interval: Annotated[float, Opt(help="--watch: seconds between refreshes.")] = 5.0,
) -> None:
    """Every job of a reproduction: done / running / queued / failed / not submitted, epoch,
    last validation TA/RA, img/s, ETA, job id; failed jobs' errors and logs under the table."""
    from robench.launch.launcher import status_view

    if not out.is_dir():
        raise RobenchError(f"{out} is not a folder")
    if not watch:
        console.print(status_view(out, suite)[0])
        return
    import time as clock

    from rich.live import Live

    with Live(status_view(out, suite)[0], console=console, auto_refresh=False) as live:
        while True:
            table, settled = status_view(out, suite)
            live.update(table, refresh=True)
            if settled:
                break
            clock.sleep(max(interval, 0.2))


@app.command("job", hidden=True)
def job(
    suite: Annotated[str, typer.Argument(help="Suite TOML file, or a shipped suite's name.")],
    out: Annotated[Path, Opt(help="The reproduction's output folder.")],
    job_id: Annotated[str, Opt("--job", help="The job's id, e.g. train.P1F4.")],
    only: Annotated[list[str] | None, Opt(help="The runs the reproduction selected.")] = None,
    precision: Precision = "fp32",
    data_dir: DataDir = None,
    device: Device = "auto",
    checkpoint_every: CheckpointEvery = 100,
    log: Log = None,
) -> None:
    """Run one job of a launched reproduction (what the local launcher starts)."""
    from robench.launch.jobs import JobSpec, execute

    spec = JobSpec(
        suite=suite,
        out=str(out),
        job=job_id,
        only=tuple(only or ()),
        device=device,
        data_dir=data_dir,
        precision=precision,
        checkpoint_every=checkpoint_every,
        log=tuple(log or ()),
    )
    execute(spec, console=console)
    console.print(Text(f"job {job_id} done"))
