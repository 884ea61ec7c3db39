"""Smoke test of the speed benchmark (benchmarks/train_speed.py): the tiniest CPU run end to end.

It runs as `python -m benchmarks.train_speed` from the repository root (benchmarks/ is not an
installed package) on synthetic pixels, so it needs no data set and no decode cache. Speeds
are not asserted: only that every (workload, implementation) row is there and positive.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

EXPECTED_ROWS = {
    ("pgd10_at", "robench"),
    ("pgd10_at", "reference"),
    ("pgd10_at", "torchattacks"),
    ("standard", "robench"),
    ("standard", "reference"),
    ("pgd20_eval", "robench"),
    ("pgd20_eval", "reference"),
    ("pgd20_eval", "torchattacks"),
    ("autoattack", "robench"),
    ("autoattack", "reference"),
    ("pgd20_precision", "robench-bf16"),
    ("pgd20_precision", "robench-fp32"),
}
COLUMNS = {
    "model",
    "workload",
    "implementation",
    "images_per_s",
    "seconds",
    "measured_seconds",
    "n_images",
    "target_images",
    "extrapolated",
    "ratio_vs_reference",
    "tflops",
    "peak_fraction",
    "clean_acc",
    "robust_acc",
    "batch_size",
    "device",
    "torch",
    "note",
}


@pytest.mark.slow
def test_cpu_smoke_run_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.csv"
    args = [
        *("--device", "cpu", "--data", "synthetic", "--models", "preact_tiny", "--threads", "1"),
        *("--train-images", "8", "--eval-images", "8", "--batch-size", "8", "--warmup-steps", "1"),
        *("--aa-images", "2", "--aa-attacks", "apgd-ce"),  # full AutoAttack is minutes on CPU
        *("--fp32-eval-check", "--profile", "--out", str(out)),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.train_speed", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert set(reader.fieldnames or ()) >= COLUMNS
        rows = list(reader)
    assert {(r["workload"], r["implementation"]) for r in rows} == EXPECTED_ROWS
    assert len(rows) == len(EXPECTED_ROWS)
    for r in rows:
        assert r["model"] == "preact_tiny"
        assert float(r["images_per_s"]) > 0 and float(r["seconds"]) > 0, r
        assert r["batch_size"] == "8" and r["peak_fraction"] == ""  # no GPU peak on CPU
        if r["workload"] in ("pgd10_at", "standard", "pgd20_eval"):
            assert r["extrapolated"] == "True" and float(r["tflops"]) > 0, r
        if r["implementation"] == "reference":
            assert float(r["ratio_vs_reference"]) == 1.0
    aa = [r for r in rows if r["workload"] == "autoattack"]
    assert all(r["n_images"] == "2" and r["extrapolated"] == "False" for r in aa)
    assert (tmp_path / "bench-profile.txt").read_text().count("aten::") >= 5
