"""RobustBench's published CIFAR-10 numbers (clean and AutoAttack accuracy), as reference rows.

RobustBench publishes one JSON per zoo model under `model_info/<dataset>/<threat model>/` in
its repository; the PyPI package does not ship them. robench carries a snapshot of the CIFAR-10
L-inf and L2 entries (robustbench_published.csv beside this file, its `source` column naming
the commit), so evaluation rows of zoo models carry the published numbers beside robench's,
and `robench leaderboard robustbench` writes them as a board, offline. A newer checkout's
folder can be read instead (`--model-info DIR`), and the snapshot rebuilt from one:

    python -m robench.models.robustbench_published MODEL_INFO_DIR --source "model_info @ SHA"
"""

from __future__ import annotations

import csv
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

from robench.errors import RobenchError

SNAPSHOT = Path(__file__).with_name("robustbench_published.csv")
FIELDS = (
    "model_name",
    "threat_model",
    "dataset",
    "eps",
    "clean_acc",
    "autoattack_acc",
    "reported",
    "architecture",
    "venue",
    "paper",
    "link",
    "additional_data",
    "number_forward_passes",
    "unreliable",
    "source",
)
THREAT_MODELS = ("Linf", "L2")


def read_model_info(folder: Path, threat_model: str, source: str) -> list[dict[str, Any]]:
    """The entries of `folder/cifar10/<threat_model>/*.json` (a RobustBench `model_info`)."""
    where = Path(folder) / "cifar10" / threat_model
    if not where.is_dir():
        raise RobenchError(f"{where} is not a folder: --model-info takes RobustBench's model_info/")
    rows = []
    for path in sorted(where.glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RobenchError(f"{path}: not a RobustBench model entry ({exc})") from None
        rows.append(_row(path.stem, threat_model, entry, source))
    return rows


def _row(name: str, threat_model: str, entry: dict[str, Any], source: str) -> dict[str, Any]:
    return {
        "model_name": name,
        "threat_model": threat_model,
        "dataset": entry.get("dataset", "cifar10"),
        "eps": str(entry.get("eps", "")),
        "clean_acc": _number(entry.get("clean_acc")),
        "autoattack_acc": _number(entry.get("autoattack_acc")),
        "reported": _number(entry.get("reported")),
        "architecture": entry.get("architecture", ""),
        "venue": entry.get("venue", "") or "Unpublished",
        "paper": entry.get("name", ""),
        "link": entry.get("link", ""),
        "additional_data": bool(entry.get("additional_data", False)),
        "number_forward_passes": entry.get("number_forward_passes"),
        "unreliable": bool(entry.get("unreliable", False)),
        "source": source,
    }


def _number(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def published_rows(threat_model: str, model_info: Path | None = None) -> list[dict[str, Any]]:
    """The published entries of one threat model: from `model_info`, else the snapshot."""
    if threat_model not in THREAT_MODELS:
        raise RobenchError(f"--threat-model {threat_model!r} must be one of Linf, L2")
    if model_info is not None:
        return read_model_info(model_info, threat_model, f"model_info at {model_info}")
    return [dict(r) for r in _snapshot() if r["threat_model"] == threat_model]


def published(name: str, threat_model: str) -> dict[str, Any] | None:
    """The snapshot's entry of one zoo model (None: RobustBench publishes no number for it)."""
    return next(
        (r for r in _snapshot() if r["model_name"] == name and r["threat_model"] == threat_model),
        None,
    )


@cache
def _snapshot() -> tuple[dict[str, Any], ...]:
    with open(SNAPSHOT, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in ("clean_acc", "autoattack_acc", "reported"):
            row[key] = _number(row[key])
    return tuple(rows)


def write_snapshot(model_info: Path, source: str, out: Path = SNAPSHOT) -> int:
    rows = [r for tm in THREAT_MODELS for r in read_model_info(model_info, tm, source)]
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) != 3 or args[1] != "--source":
        sys.exit("usage: python -m robench.models.robustbench_published DIR --source TEXT")
    print(f"{write_snapshot(Path(args[0]), args[2])} entries -> {SNAPSHOT}")
