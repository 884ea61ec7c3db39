"""`--launcher slurm`: one SLURM job per DAG job through submitit, chained with `afterok`.

`submit_slurm` submits every job that is neither done nor still queued or running (a rerun of
the same command submits only what is unfinished), each depending on the cluster ids of the
jobs it waits for that are not done yet, and returns at once; the jobs run the same
`execute(spec)` as the local launcher's, unpickled on the node by submitit. A job is
`Checkpointable`: on SLURM's preemption or time-limit signal submitit requeues it, and the
requeued job resumes training from its last mid-epoch checkpoint (bit-identical, as after kill -9).
A job with `gpus_per_job > 1` gets as many tasks, and submitit's environment becomes torchrun's
(RANK, WORLD_SIZE, MASTER_ADDR, ...), so robench's DDP runs across its GPUs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import submitit

from robench.config.launcher import LauncherConfig
from robench.errors import RobenchError
from robench.launch.dag import Job
from robench.launch.jobs import JobSpec, execute
from robench.launch.state import LaunchState

THREADS = "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}"
ALIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"}


class ClusterJob(submitit.helpers.Checkpointable):
    """What a SLURM job runs: one DAG job. Requeued as it is on preemption or time-out."""

    def __call__(self, spec: JobSpec) -> str:
        if int(os.environ.get("SLURM_NTASKS", "1")) > 1:  # DDP across the job's GPUs
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        execute(spec)
        return spec.job


def queue_states(ids: list[str]) -> dict[str, str]:
    """SLURM's state of each of these jobs that the queue still holds (squeue; no accounting)."""
    if not ids or shutil.which("squeue") is None:
        return {}
    done = subprocess.run(
        ["squeue", "-h", "-o", "%i %T", "-j", ",".join(ids)],
        capture_output=True,
        text=True,
        check=False,
    )
    states = {}
    for line in done.stdout.splitlines():
        job_id, _, state = line.strip().partition(" ")
        states[job_id] = state
    return states


def submit_slurm(
    jobs: list[Job],
    spec: JobSpec,
    config: LauncherConfig,
    *,
    say: Callable[[str], None] = print,
) -> dict[str, str]:
    """Submit what is unfinished; returns job -> its cluster id (submitted now or before)."""
    if shutil.which("sbatch") is None:
        raise RobenchError("--launcher slurm: no sbatch on PATH (is this a SLURM login node?)")
    state = LaunchState(spec.out_path)
    previous = state.submitted()
    alive = queue_states([e["cluster_id"] for e in previous.values() if e["launcher"] == "slurm"])
    ids: dict[str, str] = {}
    queued: list[str] = []  # submitted by this call, in order
    for job in jobs:
        if state.done(job.id):
            say(f"done     {job.id}")
            continue
        before = previous.get(job.id, {})
        if before.get("launcher") == "slurm" and alive.get(before["cluster_id"]) in ALIVE:
            ids[job.id] = before["cluster_id"]
            say(f"{alive[before['cluster_id']].lower():8} {job.id} (job {ids[job.id]})")
            continue
        waits = [ids[d] for d in job.after if d in ids]
        dependency = f"afterok:{':'.join(waits)}" if waits else ""
        if config.max_jobs and len(queued) >= config.max_jobs:  # at most max_jobs at once:
            slot = f"afterany:{queued[-config.max_jobs]}"  # chains of max_jobs jobs each
            dependency = f"{dependency},{slot}" if dependency else slot
        submitted = _submit(job, spec, config, dependency, state.folder / "slurm")
        ids[job.id] = str(submitted.job_id)
        queued.append(ids[job.id])
        log = submitted.paths.stdout
        state.record_submission(job.id, "slurm", ids[job.id], log)
        after = f" after {dependency}" if dependency else ""
        say(f"queued   {job.id} (job {ids[job.id]}{after}); log: {log}")
    return ids


def _submit(job: Job, spec: JobSpec, config: LauncherConfig, dependency: str, folder: Path):
    executor = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=config.max_requeues)
    gpus = config.gpus_per_job if job.kind != "report" else min(config.gpus_per_job, 1)
    tasks = gpus if gpus > 1 and job.kind in ("train", "eval") else 1
    parameters = {
        "job_name": f"robench-{job.id}",
        "time": config.time_minutes,
        "cpus_per_task": max(1, (config.cpus_per_job or tasks) // tasks),
        "ntasks_per_node": tasks,
        "partition": config.partition,
        "account": config.account,
        "qos": config.qos,
        "constraint": config.constraint,
        "mem": config.mem,
        # torch's threads: the job's CPUs, not the node's (and the same numbers as a local
        # or sequential run with as many threads)
        "setup": [THREADS, *config.setup],
        "dependency": dependency or None,
        # a job whose dependency failed leaves the queue instead of waiting forever; a
        # requeued job appends to its log, so the attempt before the requeue stays readable
        "additional_parameters": {"kill-on-invalid-dep": "yes", "open-mode": "append"},
        "stderr_to_stdout": True,  # one log per job, the traceback in it
        "srun_args": ["--open-mode=append"],  # the task's log too (srun truncates otherwise)
    }
    if gpus:
        parameters["gpus_per_node"] = gpus
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    try:
        return executor.submit(ClusterJob(), replace(spec, job=job.id))
    except Exception as exc:  # sbatch's refusal: a wrong partition, account, limit
        first = (str(exc).strip().splitlines() or [""])[-1]
        raise RobenchError(f"sbatch refused {job.id}: {first[:300]}") from None
