"""Wall time of `robench reproduce smoke`: sequential, `--launcher local --jobs 2`, and
`--launcher slurm` (where a cluster answers); then the `--dry-run` plan of `paper`.

    python -m benchmarks.launch_wall [--suite smoke] [--skip-slurm] [--out benchmarks/results]

Each launcher reproduces the suite into a fresh folder, in one run of this script, so the
three are compared on the same machine at the same time (the CPUs are shared and noisy:
read the ratios). The plan of `paper` on 1, 8 and 64 GPUs goes to paper-plan.csv. Both
tables are printed and written as CSV, and as Markdown to benchmarks/launch.md.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import cpu_name

ROOT = Path(__file__).resolve().parents[1]


def _robench(*args: str) -> list[str]:
    return [sys.executable, "-m", "robench", *args]


def _timed(argv: list[str], log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}; see {log}")
    return time.perf_counter() - start


def _wait_settled(out: Path, timeout_s: float = 3600) -> None:
    from robench.launch.launcher import status_view

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if status_view(out, None)[1]:
            return
        time.sleep(1)
    sys.exit(f"the SLURM jobs of {out} did not finish in {timeout_s} s")


def wall_times(suite: str, skip_slurm: bool) -> list[dict[str, object]]:
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="robench-launch-"))
    common = ["--device", "cpu"]
    plans = [("sequential", []), ("local --jobs 2", ["--launcher", "local", "--jobs", "2"])]
    if not skip_slurm and shutil.which("sbatch"):
        plans.append(("slurm", ["--launcher", "slurm", "--cpus-per-job", "1"]))
    for name, extra in plans:
        out = scratch / name.replace(" ", "_").replace("-", "")
        argv = _robench("reproduce", suite, "--out", str(out), *common, *extra)
        start = time.perf_counter()
        _timed(argv, scratch / f"{out.name}.log")
        if name == "slurm":
            _wait_settled(out)
        seconds = time.perf_counter() - start
        jobs = _job_seconds(out)
        rows.append({
            "suite": suite,
            "launcher": name,
            "wall_s": round(seconds, 1),
            "jobs": len(jobs) or "",
            # the jobs' own time (their stage functions), without each process's start
            "sum_job_s": round(sum(jobs), 1) if jobs else "",
        })  # fmt: skip
        print(f"{name:>16}: {seconds:7.1f} s", flush=True)
    base = rows[0]["wall_s"]
    for row in rows:
        row["vs_sequential"] = round(float(row["wall_s"]) / float(base), 2)
        row["machine"] = f"{cpu_name()}, {_cores()} cores"
    shutil.rmtree(scratch, ignore_errors=True)
    return rows


def _job_seconds(out: Path) -> list[float]:
    """Seconds each job of a launcher's run spent in `execute` (DIR/launch/done/*.json)."""
    import json

    done = out / "launch" / "done"
    return [float(json.loads(p.read_text()).get("seconds", 0)) for p in done.glob("*.json")]


def paper_plan(gpus: str = "1,8,64") -> list[dict[str, object]]:
    from robench.config import load_suite
    from robench.launch import reproduction_jobs
    from robench.launch.plan import job_costs, plan_rows

    suite = load_suite("paper")
    benchmarks = sorted((ROOT / "benchmarks" / "results").glob("*.csv"))
    costs = job_costs(
        reproduction_jobs(suite, None),
        out=Path(tempfile.mkdtemp()),
        benchmark_csvs=[p for p in benchmarks if "plan" not in p.name and "launch" not in p.name],
    )
    return plan_rows(costs, tuple(int(g) for g in gpus.split(",")))


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _write(rows: list[dict[str, object]], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _markdown(rows: list[dict[str, object]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--skip-slurm", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    walls = wall_times(args.suite, args.skip_slurm)
    plan = paper_plan()
    args.out.mkdir(parents=True, exist_ok=True)
    _write(walls, args.out / "launch-wall.csv")
    _write(plan, args.out / "paper-plan.csv")
    text = (
        f"# Launchers\n\nWall time of `robench reproduce {args.suite} --device cpu` "
        f"(`python -m benchmarks.launch_wall`, one run; `sum_job_s`: the jobs' own seconds, "
        "without each process's start):\n\n"
        f"{_markdown(walls)}\n\n"
        "The `--dry-run` plan of `paper` (one GPU per job):\n\n"
        f"{_markdown(plan)}\n"
    )
    (ROOT / "benchmarks" / "launch.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
