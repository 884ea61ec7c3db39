"""Per-example flags on disk, so an interrupted evaluation resumes where it stopped.

One file per (model, evaluation, protocol): the boolean flags of the examples done so far, clean
and measured (for an attack: correct clean and under attack), rewritten atomically after every
batch. The file name carries a hash of everything that determines the flags (model weights,
test data, attack and its settings, n, seed, batch size), so a changed protocol starts afresh
instead of mixing flags of two protocols. A killed process leaves at worst the previous batch's
file, never a torn one.

When an evaluation is asked to keep its adversarial examples (the transfer analysis attacks
other models with them), each batch's examples go into a file of their own beside the flags,
`<flags>.examples/<batch>.npy`: written once per batch, never rewritten, so keeping them costs
one write per batch however long the evaluation is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robench.atomic import atomic_write, write_json_atomic
from robench.runs.identity import protocol_key

FORMAT = "robench-flags-v2"  # v1 held the measured flags only; a v1 file is recomputed


@dataclass(frozen=True)
class StoredFlags:
    """The examples done so far: a prefix (possibly empty, possibly all n) of both arrays."""

    clean: np.ndarray  # bool: correct on the clean image
    measured: np.ndarray  # bool: what the evaluation measures (= clean without an attack)
    seconds: float = 0.0  # compute time of this prefix, summed over the runs that resumed it

    def __len__(self) -> int:
        return len(self.measured)


_EMPTY = StoredFlags(np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))


@dataclass(frozen=True)
class FlagFile:
    """The stored flags (and, if kept, examples) of one evaluation of one model."""

    path: Path
    protocol: dict[str, Any]
    n: int
    writable: bool = True  # False on the ranks other than 0 of a torchrun evaluation

    def load(self) -> StoredFlags:
        if not self.path.is_file():
            return _EMPTY
        try:
            with np.load(self.path, allow_pickle=False) as data:
                fmt = str(data["format"])
                clean = np.asarray(data["clean"], dtype=bool)
                measured = np.asarray(data["flags"], dtype=bool)
                seconds = float(data["seconds"]) if "seconds" in data.files else 0.0
        except (OSError, ValueError, KeyError):
            return _EMPTY  # unreadable or an older format: recompute rather than trust it
        if fmt != FORMAT or measured.ndim != 1 or clean.shape != measured.shape:
            return _EMPTY
        if len(measured) > self.n:
            return _EMPTY
        return StoredFlags(clean, measured, seconds)

    def save(self, clean: np.ndarray, measured: np.ndarray, seconds: float = 0.0) -> None:
        """Write the prefix done so far and the compute seconds it took, so that rows rebuilt
        later from complete flags (a rerun, a cluster's report job) still say what it cost."""
        if not self.writable:
            return
        clean, measured = np.asarray(clean, dtype=bool), np.asarray(measured, dtype=bool)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(
                    handle,
                    clean=clean,
                    flags=measured,
                    seconds=np.array(float(seconds)),
                    format=np.array(FORMAT),
                )

        atomic_write(self.path, write)

    def is_complete(self) -> bool:
        return len(self.load()) == self.n

    # -- kept adversarial examples, one file per batch ------------------------------------

    @property
    def examples_dir(self) -> Path:
        return self.path.with_suffix(".examples")

    def _example_path(self, batch: int) -> Path:
        return self.examples_dir / f"{batch:06d}.npy"

    def save_examples(self, batch: int, examples: torch.Tensor) -> None:
        if not self.writable:
            return
        array = examples.detach().float().cpu().contiguous().numpy()
        atomic_write(self._example_path(batch), lambda tmp: _save_npy(tmp, array))

    def examples_done(self, num_batches: int) -> int:
        """How many leading batches have their examples stored (and readable)."""
        done = 0
        while done < num_batches and _readable(self._example_path(done)):
            done += 1
        return done

    def load_examples(self, num_batches: int) -> torch.Tensor:
        """All kept examples, in order (every batch must be there: see `examples_done`)."""
        parts = [np.load(self._example_path(b), allow_pickle=False) for b in range(num_batches)]
        if not parts:
            return torch.zeros(0)
        return torch.from_numpy(np.concatenate(parts))


def _readable(path: Path) -> bool:
    """A stored batch of examples whose header reads (a memory map: the data is not read)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False).ndim == 4
    except (OSError, ValueError):
        return False


def _save_npy(tmp: Path, array: np.ndarray) -> None:
    with open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


class FlagStore:
    """The folder of one model's evaluation flags (a run's `eval/` folder)."""

    def __init__(self, folder: Path, writable: bool = True) -> None:
        self.folder = Path(folder)
        self.writable = writable

    def file(self, name: str, protocol: dict[str, Any], n: int) -> FlagFile:
        """The flag file of evaluation `name` under `protocol` on the first n images."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        full = json.loads(json.dumps({**protocol, "n": n}, default=str))
        path = self.folder / f"{safe}-{protocol_key(full)}.npz"
        if self.writable and not path.with_suffix(".json").is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path.with_suffix(".json"), {"evaluation": name, "protocol": full})
        return FlagFile(path, full, n, self.writable)
