"""metrics.jsonl: one JSON object per finished epoch, appended as the run goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robench.atomic import write_text_atomic


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a crash: everything after it is untrustworthy
    return records


def truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drop records after the last checkpointed epoch (written before a crash lost the state)."""
    kept = [r for r in read_metrics(path) if r.get("epoch", 0) <= last_epoch]
    write_text_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
