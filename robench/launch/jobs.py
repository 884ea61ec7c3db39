"""Running one job of a reproduction's DAG (dag.py), wherever a launcher started it.

A job is described by a `JobSpec` (the suite file, the output folder, the job id and the
session's settings) that a launcher hands to a process: the local launcher as
`robench job ...`, SLURM through submitit, which pickles the spec. The job builds its own
Session, runs its stage functions (the same ones `robench reproduce` calls one after another),
and records done or failed in DIR/launch/. Training inside a job resumes mid-epoch from its
last checkpoint, so a job killed, preempted or requeued and run again gives the numbers an
uninterrupted one would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from robench.config import Suite, load_suite
from robench.distributed import current
from robench.eval.suites import EvalOptions
from robench.launch.dag import Job, job_by_id, plan_jobs
from robench.launch.state import LaunchState
from robench.session import Layout, Session


@dataclass(frozen=True)
class JobSpec:
    """Everything a process needs to run one job (picklable: submitit sends it to a node)."""

    suite: str  # the suite file (resolved) or a shipped suite's name
    out: str
    job: str
    only: tuple[str, ...] = ()
    device: str = "auto"
    data_dir: str | None = None
    precision: str = "fp32"
    checkpoint_every: int = 100
    log: tuple[str, ...] = ()  # training logs (tensorboard, wandb)

    @property
    def out_path(self) -> Path:
        return Path(self.out)

    def argv(self) -> list[str]:
        """The `robench job` command line of this spec (the local launcher's subprocess)."""
        args = ["job", self.suite, "--out", self.out, "--job", self.job, "--device", self.device]
        args += ["--precision", self.precision, "--checkpoint-every", str(self.checkpoint_every)]
        for run in self.only:
            args += ["--only", run]
        for logger in self.log:
            args += ["--log", logger]
        if self.data_dir is not None:
            args += ["--data-dir", self.data_dir]
        return args


def reproduction_jobs(suite: Suite, only: tuple[str, ...] | list[str] | None) -> list[Job]:
    """The DAG of `robench reproduce SUITE [--only ...]`."""
    from robench.leaderboard.paper_boards import complete_tables

    runs = suite.select(list(only) if only else None)
    tables = complete_tables(suite.tables, {r.name for r in runs}, Console(quiet=True))
    return plan_jobs(suite, runs, tables)


def execute(spec: JobSpec, console: Console | None = None) -> None:
    """Run the job of `spec` and record the outcome in DIR/launch/ (rank 0 under DDP)."""
    suite = load_suite(spec.suite)
    session = Session.start(
        spec.device,
        console=console,
        data_dir=spec.data_dir,
        checkpoint_every=spec.checkpoint_every,
        runtime=suite.runtime,
        log=spec.log,
    )
    state = LaunchState(Path(spec.out))
    start = time.perf_counter()
    try:
        run_job(session, suite, spec)
    except Exception as exc:  # recorded for `robench status`, then raised as it was
        if current().is_main:
            first = (str(exc).strip().splitlines() or [""])[0]
            state.mark_failed(spec.job, f"{type(exc).__name__}: {first}"[:500])
        raise
    if current().is_main:
        state.mark_done(spec.job, time.perf_counter() - start)


def run_job(session: Session, suite: Suite, spec: JobSpec) -> None:
    """One job's stage functions (see dag.py for what each kind does)."""
    from robench.eval.targets import run_target
    from robench.leaderboard.board_set import BoardSet
    from robench.train.finetune import train_run
    from robench.train.lifecycle import PRETRAIN_FOLDER
    from robench.train.pretrain import pretrain_run
    from robench.train.stage import TrainedSuite
    from robench.workflow import evaluate, evaluate_table_models, reproduce, transfer_runs

    layout = Layout(Path(spec.out))
    runs = suite.select(list(spec.only) if spec.only else None)
    job = job_by_id(reproduction_jobs(suite, spec.only), spec.job)
    options = EvalOptions(seed=suite.protocol.seed, precision=spec.precision)
    env = session.train_env(suite)
    if job.kind == "pretrain":
        pretraining = next(p for p in suite.pretrainings(runs) if p.name == job.target)
        current().on_main(lambda: pretrain_run(pretraining, layout.runs / PRETRAIN_FOLDER, env))
    elif job.kind == "train":
        run = suite.runs[job.target]
        train_run(run, layout.runs, env)
        boards = BoardSet(layout.leaderboards, warn=session.warn)
        target = run_target(layout.runs / run.name, data_dir=session.data_dir)
        evaluate(session, [target], "pgd20", boards, options, keep_examples_of=transfer_runs(runs))
    elif job.kind == "eval":
        from robench.leaderboard.paper_boards import complete_tables

        tables = complete_tables(suite.tables, {r.name for r in runs}, Console(quiet=True))
        boards = BoardSet(layout.leaderboards, warn=session.warn)
        trained = TrainedSuite(runs_dir=layout.runs)
        evaluate_table_models(session, {job.target: tables[job.target]}, trained, boards, options)
    else:  # the report: every run is trained and every evaluation's flags are stored
        reproduce(session, suite, layout.root, list(spec.only) or None, precision=spec.precision)
