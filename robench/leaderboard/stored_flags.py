"""The per-example flags behind a board's numbers, found again for paired tests.

A paired test needs both models' flags on the same images. Two ways lead back to them:

- a board row written since boards carry flag pointers (`flag_dir`, `flag_files`): the row
  names the file of each of its metrics that is one evaluation's flags (`row_flags`);
- a run directory or a flag folder (`.eval-state/ensembles/NAME-HASH/`, `.../external/...`):
  every stored evaluation there is listed with its protocol (`stored_evaluations`), and two
  sides are paired on equal protocols (`pair_evaluations`), so `robench compare` works on
  runs that never went into a board.

Only complete flag files count: an interrupted evaluation's prefix is not a result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robench.errors import RobenchError
from robench.runs import FlagFile
from robench.runs.run_dir import EVAL_FOLDER

# What may differ between two sides of a paired test: which model, and how it was batched.
NOT_PROTOCOL = ("model", "batch_size")


def _flag_array(path: Path, protocol: dict[str, Any], measured: bool) -> np.ndarray | None:
    """The flags of a complete flag file (the measured ones, or the clean ones), else None."""
    n = int(protocol.get("n", -1))
    stored = FlagFile(path, protocol, n, writable=False).load()
    if n < 0 or len(stored) != n:
        return None
    return stored.measured if measured else stored.clean


def row_flags(row: pd.Series | dict, metric: str) -> np.ndarray | None:
    """The flags a board row's `metric` was computed from, when the row points at them and
    they are still there (None otherwise: an old board, a moved or deleted folder)."""
    folder, pointers = row.get("flag_dir"), row.get("flag_files")
    if not isinstance(folder, str) or not isinstance(pointers, str) or not pointers:
        return None
    files = dict(p.split("=", 1) for p in pointers.split(";") if "=" in p)
    if metric not in files:
        return None
    path = Path(folder) / files[metric]
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        return None
    try:
        protocol = _read_sidecar(sidecar)["protocol"]
    except RobenchError:
        return None  # an unreadable description: no paired test, rather than no diff at all
    return _flag_array(path, protocol, measured=metric != "ta")


@dataclass(frozen=True)
class StoredEvaluation:
    """One complete stored evaluation of one model: its protocol and its flags."""

    name: str
    protocol: dict[str, Any]
    path: Path
    flags: np.ndarray

    @property
    def n(self) -> int:
        return int(self.protocol["n"])

    @property
    def comparable(self) -> str:
        """The protocol less what may differ between two paired sides, as canonical text."""
        rest = {k: v for k, v in self.protocol.items() if k not in NOT_PROTOCOL}
        return json.dumps(rest, sort_keys=True, default=str)


def stored_evaluations(
    folder: Path, evaluation: str, *, measured: bool, model_hash: str | None = None
) -> list[StoredEvaluation]:
    """Every complete stored evaluation named `evaluation` in a flag folder (of the model
    `model_hash`, when a run's folder holds several checkpoints' flags)."""
    found = []
    for sidecar in sorted(Path(folder).glob("*.json")):
        try:
            entry = _read_sidecar(sidecar)
        except RobenchError:
            continue
        protocol = entry.get("protocol")
        if entry.get("evaluation") != evaluation or not isinstance(protocol, dict):
            continue
        if model_hash is not None and protocol.get("model") != model_hash:
            continue
        flags = _flag_array(sidecar.with_suffix(".npz"), protocol, measured)
        if flags is not None:
            found.append(StoredEvaluation(evaluation, protocol, sidecar.with_suffix(".npz"), flags))
    return found


def flag_folder(path: Path, checkpoint: str) -> tuple[Path, str | None]:
    """A run directory's flag folder and its `checkpoint`'s weights hash; a flag folder as it
    is (it holds one model's flags). A one-line error for anything else."""
    from robench.runs import open_run_dir
    from robench.runs.checkpoint import load_model_checkpoint, model_tensors
    from robench.runs.identity import tensors_sha256

    path = Path(path)
    if (path / "config.json").is_file():
        run = open_run_dir(path)
        model, meta = load_model_checkpoint(run.checkpoint(checkpoint))
        return run.eval_dir, tensors_sha256(model_tensors(model), meta)
    if path.is_dir() and any(path.glob("*.npz")):
        return path, None
    if path.is_dir() and (path / EVAL_FOLDER).is_dir():
        return path / EVAL_FOLDER, None
    raise RobenchError(
        f"{path} is neither a run directory nor a folder of stored flags (an ensemble's or "
        "external model's is under <leaderboard-dir>/.eval-state/)"
    )


def pair_evaluations(
    a: list[StoredEvaluation], b: list[StoredEvaluation], n: int | None = None
) -> tuple[StoredEvaluation, StoredEvaluation]:
    """The two sides' evaluations under one protocol on the same images: on `n` images when
    given, else the most images both have. A one-line error when there is none."""
    if not a or not b:
        missing = "A" if not a else "B"
        raise RobenchError(f"{missing} has no complete stored evaluation of this metric")
    pairs = [(x, y) for x in a for y in b if x.comparable == y.comparable]
    if n is not None:
        pairs = [(x, y) for x, y in pairs if x.n == n]
    if not pairs:
        x = max(a, key=lambda e: e.n) if n is None else _closest(a, n)
        y = max(b, key=lambda e: e.n) if n is None else _closest(b, n)
        raise RobenchError(
            "A and B were not evaluated on the same images under the same protocol: "
            + describe_difference(x.protocol, y.protocol)
        )
    return max(pairs, key=lambda p: p[0].n)


def _closest(found: list[StoredEvaluation], n: int) -> StoredEvaluation:
    return min(found, key=lambda e: abs(e.n - n))


def describe_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """'n 20 vs 1000; attack.eps 0.031 vs 0.016': what differs, less the model."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    keys = sorted(k for k in set(flat_a) | set(flat_b) if k.split(".")[0] not in NOT_PROTOCOL)
    parts = [
        f"{k} {flat_a.get(k, '-')} vs {flat_b.get(k, '-')}"
        for k in keys
        if flat_a.get(k) != flat_b.get(k)
    ]
    return "; ".join(parts) or "their protocols differ"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RobenchError(f"{path}: unreadable flag description ({exc})") from None
    if not isinstance(entry, dict) or "protocol" not in entry:
        raise RobenchError(f"{path}: not a flag description")
    return entry
