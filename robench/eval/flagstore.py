"""Per-example flags on disk, so an interrupted evaluation resumes where it stopped.

One file per (model, evaluation, protocol): the boolean flags of the examples done so far,
rewritten atomically after every batch. The file name carries a hash of everything that
determines the flags (model weights, test data, attack and its settings, n, seed, batch size);
a changed protocol therefore starts afresh instead of mixing flags of two protocols. A killed
process leaves at worst the previous batch's file, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robench.atomic import atomic_write, write_json_atomic

FORMAT = "robench-flags-v1"


def protocol_key(protocol: dict[str, Any]) -> str:
    text = json.dumps(protocol, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FlagFile:
    """The stored flags of one evaluation; `done` examples are final, the rest still to do."""

    path: Path
    protocol: dict[str, Any]
    n: int

    def load(self) -> np.ndarray:
        """Flags of the examples done so far (a prefix, possibly empty, possibly all n)."""
        if not self.path.is_file():
            return np.zeros(0, dtype=bool)
        try:
            with np.load(self.path, allow_pickle=False) as data:
                flags = np.asarray(data["flags"], dtype=bool)
                fmt = str(data["format"])
        except (OSError, ValueError, KeyError):
            return np.zeros(0, dtype=bool)  # unreadable: recompute rather than trust it
        if fmt != FORMAT or flags.ndim != 1 or len(flags) > self.n:
            return np.zeros(0, dtype=bool)
        return flags

    def save(self, flags: np.ndarray) -> None:
        flags = np.asarray(flags, dtype=bool)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, flags=flags, format=np.array(FORMAT))

        atomic_write(self.path, write)

    def is_complete(self) -> bool:
        return len(self.load()) == self.n


class FlagStore:
    """The folder of one model's evaluation flags (a run's `eval/` folder).

    `writable` is False on the ranks other than 0 of a torchrun evaluation: they read, rank 0
    writes.
    """

    def __init__(self, folder: Path, writable: bool = True) -> None:
        self.folder = Path(folder)
        self.writable = writable

    def file(self, name: str, protocol: dict[str, Any], n: int) -> FlagFile:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        full = {**protocol, "n": n}
        key = protocol_key(full)
        path = self.folder / f"{safe}-{key}.npz"
        if self.writable and not path.with_suffix(".json").is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path.with_suffix(".json"), {"evaluation": name, "protocol": full})
        return FlagFile(path, full, n)
