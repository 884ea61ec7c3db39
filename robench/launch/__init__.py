"""Where a reproduction's jobs run: in this process (sequential), here K at a time, or on SLURM.

dag.py     the job DAG of `robench reproduce` (pretrainings, fine-tunings, table evaluations,
           the report)
jobs.py    one job, run in any process that sees the output folder (`JobSpec`, `execute`)
state.py   DIR/launch/: submissions, done and failed markers, logs
local.py   `--launcher local --jobs K`
slurm.py   `--launcher slurm`, through submitit (afterok chains, requeue on preemption)
status.py  `robench status DIR`
plan.py    `--dry-run`: the DAG and its cost in GPU-hours and wall time
"""

from __future__ import annotations

from robench.launch.dag import Job, plan_jobs
from robench.launch.jobs import JobSpec, execute, reproduction_jobs

__all__ = ["Job", "JobSpec", "execute", "plan_jobs", "reproduction_jobs"]
