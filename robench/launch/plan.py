"""`robench reproduce ... --dry-run`: the job DAG and what it will cost, before it is spent.

Each job's cost is images x passes / throughput. Where the throughput comes from, in order,
and the plan says which for every job:

1. `measured`: finished runs of the same model and kind (adversarial or not) in the output
   folder, their median training img/s;
2. `benchmark`: a row of a benchmark CSV (benchmarks/results/, `--throughput-csv`) for the
   model and workload (pgd10_at, standard) on the device the plan is for;
3. `flops`: the model's forward FLOPs per image, counted (torch's FlopCounterMode on one
   32x32 image), times the passes of the workload, over an assumed sustained rate
   (`--tflops`; the default is a guess and the plan says so).

Passes per training image in forward-pass units (a backward costs two forwards, one that
only reaches the input one): standard training 3; PGD-10 adversarial training 10 x 2 + 3 = 23
(the ratio the benchmark's FLOP counts show); PGD-20 evaluation 20 x 2 + 1 = 41. Wall time on
G GPUs is a greedy list schedule of the DAG: a job starts as soon as what it waits for is
done and a GPU is free.
"""

from __future__ import annotations

import csv
import heapq
import statistics
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rich.table import Table
from rich.text import Text

from robench.launch.dag import Job
from robench.runs.metrics_log import read_metrics
from robench.runs.run_dir import RunDir

TRAIN_IMAGES = 45_000  # CIFAR-10's training split after the 9:1 validation split
TEST_IMAGES = 10_000
PASSES = {"standard": 3, "pgd10_at": 23, "pgd20_eval": 41}
DEFAULT_TFLOPS = 100.0  # sustained bf16 rate assumed for one modern GPU (not a measurement)
REPORT_SHARE = 0.02  # the report job's cost as a share of the rest: a guess


@dataclass(frozen=True)
class JobCost:
    job: str
    after: tuple[str, ...]
    gpu_hours: float
    source: str  # measured / benchmark FILE / flops at T TFLOPS (assumed) / guess


def job_costs(
    jobs: list[Job],
    *,
    out: Path,
    benchmark_csvs: list[Path],
    tflops: float = DEFAULT_TFLOPS,
) -> list[JobCost]:
    measured = _measured(out)
    evaluated = {j.id: j.eval_images or TEST_IMAGES for j in jobs}
    costs = []
    for job in jobs:
        if job.trains:
            workload = "pgd10_at" if job.adversarial else "standard"
            images = (job.images or TRAIN_IMAGES) * job.epochs
            rate, source = _throughput(job.model, workload, measured, benchmark_csvs, tflops)
            seconds = images / rate
            if job.kind == "train":  # and its PGD-20 evaluation
                eval_rate, _ = _throughput(job.model, "pgd20_eval", {}, benchmark_csvs, tflops)
                seconds += evaluated[job.id] / eval_rate
        elif job.kind == "eval":
            model = next((j.model for j in jobs if j.id in job.after), "")
            rate, source = _throughput(model, "pgd20_eval", {}, benchmark_csvs, tflops)
            seconds = sum(evaluated[d] for d in job.after) / rate
        else:  # boards from stored flags; the transfer analysis attacks with stored examples
            rest = sum(c.gpu_hours for c in costs) * 3600
            seconds, source = max(REPORT_SHARE * rest, 60.0), "guess: 2% of the rest"
        costs.append(JobCost(job.id, job.after, seconds / 3600, source))
    return costs


def wall_hours(costs: list[JobCost], gpus: int) -> float:
    """The finishing time of a greedy list schedule of the DAG on `gpus` GPUs."""
    finish: dict[str, float] = {}
    free = [0.0] * gpus
    heapq.heapify(free)
    for cost in costs:  # the DAG's order: every job after those it waits for
        ready = max((finish[d] for d in cost.after), default=0.0)
        start = max(ready, heapq.heappop(free))
        finish[cost.job] = start + cost.gpu_hours
        heapq.heappush(free, finish[cost.job])
    return max(finish.values(), default=0.0)


def _throughput(
    model: str,
    workload: str,
    measured: dict[tuple[str, str], float],
    benchmark_csvs: list[Path],
    tflops: float,
) -> tuple[float, str]:
    if (model, workload) in measured:
        return measured[(model, workload)], "measured (finished runs)"
    for path in benchmark_csvs:
        rate = _benchmark_rate(path, model, workload)
        if rate:
            return rate, f"benchmark {path.name}"
    flops = forward_flops(model) * PASSES[workload]
    return tflops * 1e12 / flops, f"flops at {tflops:g} TFLOPS (assumed)"


def _benchmark_rate(path: Path, model: str, workload: str) -> float | None:
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            if (row.get("model"), row.get("workload"), row.get("implementation")) == (
                model,
                workload,
                "robench",
            ):
                return float(row["images_per_s"])
    return None


def _measured(out: Path) -> dict[tuple[str, str], float]:
    """Median training img/s of the finished runs under `out`, per (model, workload)."""
    import json

    rates: dict[tuple[str, str], list[float]] = {}
    for config in sorted((out / "runs").glob("*/config.json")):
        try:
            run = json.loads(config.read_text())["run"]
        except (OSError, ValueError, KeyError):
            continue
        if not (config.parent / "result.json").is_file():
            continue
        adversarial = run.get("finetune") in ("F2", "F4")
        key = (run["protocol"]["model"], "pgd10_at" if adversarial else "standard")
        records = read_metrics(RunDir(config.parent).metrics)
        speeds = [r.get("train_images_per_s") for r in records]
        rates.setdefault(key, []).extend(s for s in speeds if s)
    return {k: statistics.median(v) for k, v in rates.items() if v}


@cache
def forward_flops(model: str) -> float:
    """FLOPs of one forward pass of `model` on one 32x32 image, counted by torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from robench.models import create

    net = create(model).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.rand(1, 3, 32, 32))
    return float(counter.get_total_flops())


def plan_tables(costs: list[JobCost], gpus: tuple[int, ...], title: str) -> tuple[Table, Table]:
    """The jobs (what each waits for, GPU-hours, where its throughput came from) and the
    totals: GPU-hours and wall time on each number of GPUs."""
    jobs = Table(title=Text(title))
    for column in ("job", "after", "GPU-h", "throughput from"):
        jobs.add_column(column, justify="right" if column == "GPU-h" else "left", overflow="fold")
    for cost in costs:
        after = ", ".join(cost.after) if len(cost.after) <= 3 else f"{len(cost.after)} jobs"
        jobs.add_row(Text(cost.job), Text(after), f"{cost.gpu_hours:.2f}", Text(cost.source))
    total = sum(c.gpu_hours for c in costs)
    totals = Table(title=Text(f"{len(costs)} jobs, {total:.1f} GPU-hours"))
    for column in ("GPUs", "wall time", "GPU-hours"):
        totals.add_column(column, justify="right")
    for count in gpus:
        totals.add_row(str(count), _hours(wall_hours(costs, count)), f"{total:.1f}")
    return jobs, totals


def plan_rows(costs: list[JobCost], gpus: tuple[int, ...]) -> list[dict[str, object]]:
    """The totals as rows (the committed plan table)."""
    total = sum(c.gpu_hours for c in costs)
    sources = sorted({c.source for c in costs})
    return [
        {
            "gpus": count,
            "jobs": len(costs),
            "gpu_hours": round(total, 2),
            "wall_hours": round(wall_hours(costs, count), 2),
            "throughput_from": "; ".join(sources),
        }
        for count in gpus
    ]


def _hours(hours: float) -> str:
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days ({hours:.0f} h)"
