"""Measurements -> CSV rows (one per model, workload and implementation), a rich table and a
Markdown table for the README."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import torch
from rich.table import Table

from benchmarks.common import FlopsPerImage, Measurement, Settings, describe_device, peak_tflops
from robench.atomic import write_text_atomic
from robench.provenance import git_revision, now_iso

COLUMNS = (
    "model",
    "workload",
    "implementation",
    "images_per_s",
    "seconds",  # extrapolated to target_images where extrapolated is true, else as measured
    "measured_seconds",
    "n_images",  # images in the timed region
    "target_images",
    "extrapolated",
    "ratio_vs_reference",  # images/s over the reference row's (>1: faster than reference)
    "tflops",  # achieved model TFLOP/s (FlopCounterMode count x images/s)
    "peak_fraction",  # tflops / the GPU's dense bf16 peak; empty where unknown (CPU)
    "flops_per_image",
    "clean_acc",
    "robust_acc",
    "batch_size",
    "device",
    "torch",
    "compile",
    "data",
    "git_revision",
    "created",
    "note",
)


def make_rows(
    measurements: list[Measurement], flops: dict[str, FlopsPerImage], settings: Settings
) -> list[dict]:
    reference = {
        (m.model, m.workload): m.images_per_s
        for m in measurements
        if m.implementation == "reference"
    }
    peak = peak_tflops(settings.device)
    common = {
        "batch_size": settings.batch_size,
        "device": describe_device(settings.device),
        "torch": torch.__version__,
        "compile": settings.compile,
        "data": settings.data,
        "git_revision": git_revision(),
        "created": now_iso(),
    }
    rows = []
    for m in measurements:
        rate = m.images_per_s
        ref = reference.get((m.model, m.workload))
        per_image = flops[m.model].for_workload(m.workload) if m.model in flops else None
        tflops = per_image * rate / 1e12 if per_image is not None else None
        rows.append(
            {
                "model": m.model,
                "workload": m.workload,
                "implementation": m.implementation,
                "images_per_s": _round(rate),
                "seconds": _round(m.target_images / rate if m.target_images else m.seconds),
                "measured_seconds": _round(m.seconds),
                "n_images": m.images,
                "target_images": m.target_images or m.images,
                "extrapolated": bool(m.target_images and m.target_images != m.images),
                "ratio_vs_reference": _round(rate / ref) if ref else None,
                "tflops": _round(tflops),
                "peak_fraction": _round(tflops / peak) if tflops is not None and peak else None,
                "flops_per_image": _round(per_image),
                "clean_acc": _round(m.clean_acc),
                "robust_acc": _round(m.robust_acc),
                **common,
                "note": m.note,
            }
        )
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    write_text_atomic(path, text.getvalue())


def rich_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for name, justify in TABLE_COLUMNS:
        table.add_column(name, justify=justify)
    for row in rows:
        table.add_row(*_cells(row))
    return table


def markdown_table(rows: list[dict]) -> str:
    header = [name for name, _ in TABLE_COLUMNS]
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if j == "right" else "---" for _, j in TABLE_COLUMNS) + "|")
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


TABLE_COLUMNS = (
    ("model", "left"),
    ("workload", "left"),
    ("implementation", "left"),
    ("img/s", "right"),
    ("seconds", "right"),
    ("x ref", "right"),
    ("TFLOP/s", "right"),
    ("% peak", "right"),
    ("TA %", "right"),
    ("RA %", "right"),
)


def _cells(row: dict) -> list[str]:
    seconds = f"{row['seconds']:.4g}"
    if row["extrapolated"]:
        seconds += f" (for {row['target_images']:,})"
    peak = row["peak_fraction"]
    return [
        row["model"],
        row["workload"],
        row["implementation"],
        f"{row['images_per_s']:.4g}",
        seconds,
        _fmt(row["ratio_vs_reference"], "{:.2f}"),
        _fmt(row["tflops"], "{:.3g}"),
        _fmt(None if peak is None else 100 * peak, "{:.1f}"),
        _fmt(row["clean_acc"], "{:.1f}"),
        _fmt(row["robust_acc"], "{:.1f}"),
    ]


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else spec.format(value)


def _round(value: float | None, digits: int = 4) -> float | None:
    """`digits` significant digits: timings on shared machines are not more precise."""
    if value is None or value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))
