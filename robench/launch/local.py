"""`--launcher local --jobs K`: the DAG on this machine, K jobs at a time.

Each job is a `robench job ...` subprocess with its log in DIR/launch/logs/. A job starts when
everything it waits for is done; one that fails takes its dependants with it (they are not
started), the others go on. On a machine with GPUs each job gets one, through
`CUDA_VISIBLE_DEVICES` (K at most the number of GPUs); on a CPU the cores are split between
the K jobs (`OMP_NUM_THREADS`; `--cpus-per-job` sets it), so two jobs do not fight over the
same cores. torch's CPU results depend on the thread count: a sequential run with as many
threads gives bit-identical numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from filelock import FileLock, Timeout

from robench.errors import RobenchError
from robench.launch.dag import Job
from robench.launch.jobs import JobSpec
from robench.launch.state import LaunchState

POLL_S = 0.5


@dataclass
class Outcome:
    done: list[str]
    failed: list[str]
    skipped: list[str]  # not started: something they wait for failed
    already: list[str]  # done before this launch


def run_local(
    jobs: list[Job],
    spec: JobSpec,
    parallel: int,
    *,
    gpus: int = 0,
    threads: int | None = None,
    say: Callable[[str], None] = print,
) -> Outcome:
    """Run every job not yet done, `parallel` at a time, in dependency order."""
    if parallel < 1:
        raise RobenchError(f"--jobs must be >= 1, got {parallel}")
    if gpus and parallel > gpus:
        raise RobenchError(f"--jobs {parallel} but this machine has {gpus} GPU(s): one job each")
    state = LaunchState(spec.out_path)
    state.folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state.folder / "local.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RobenchError(
            f"another local launcher is running the jobs of {spec.out}; wait for it to finish"
        ) from None
    try:
        threads = threads or max(1, (os.cpu_count() or 1) // parallel)
        return _schedule(jobs, spec, parallel, gpus, threads, state, say)
    finally:
        lock.release()


def _schedule(
    jobs: list[Job], spec: JobSpec, parallel: int, gpus: int, threads: int, state: LaunchState, say
) -> Outcome:
    already = [j.id for j in jobs if state.done(j.id)]
    pending = [j for j in jobs if j.id not in already]
    outcome = Outcome(done=[], failed=[], skipped=[], already=already)
    finished = set(already)
    running: dict[str, tuple[subprocess.Popen, int]] = {}  # job -> (process, its slot)
    while pending or running:
        for job_id, (process, _slot) in list(running.items()):
            code = process.poll()
            if code is None:
                continue
            del running[job_id]
            if code == 0:
                finished.add(job_id)
                outcome.done.append(job_id)
                say(f"done    {job_id}")
            else:
                outcome.failed.append(job_id)
                say(f"FAILED  {job_id} (exit {code}); log: {state.log(job_id)}")
        blocked = set(outcome.failed) | set(outcome.skipped)
        for job in list(pending):
            if any(dep in blocked for dep in job.after):
                pending.remove(job)
                outcome.skipped.append(job.id)
                say(f"skipped {job.id}: a job it waits for failed")
        free = [s for s in range(parallel) if s not in {slot for _, slot in running.values()}]
        for job in [j for j in pending if all(d in finished for d in j.after)]:
            if not free:
                break
            slot = free.pop(0)
            pending.remove(job)
            running[job.id] = (_start(job, spec, slot, gpus, threads, state), slot)
            state.record_submission(job.id, "local", str(running[job.id][0].pid), state.log(job.id))
            say(f"started {job.id}")
        if not running and pending:
            waiting = ", ".join(j.id for j in pending)
            raise RobenchError(f"jobs that can never start (a cycle?): {waiting}")
        time.sleep(POLL_S)
    return outcome


def _start(
    job: Job, spec: JobSpec, slot: int, gpus: int, threads: int, state: LaunchState
) -> subprocess.Popen:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(slot)
    log = state.log(job.id)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "robench", *replace(spec, job=job.id).argv()]
    with open(log, "ab") as handle:
        handle.write(f"\n== {' '.join(argv)}\n".encode())
        handle.flush()
        return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env)
