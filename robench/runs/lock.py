"""One process at a time in a run directory (or a model's flag folder).

Two `robench train` processes on the same `--out` would both train the same run and append
to the same metrics log; two evaluations would both rewrite the same flag files. The lock is
an exclusive `flock` on `<folder>/.lock`, whose content is the holder's PID: the kernel drops
it when the holder dies (kill -9 included), so a stale lock is simply taken over by the next
process. Under torchrun only rank 0 takes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from robench.errors import RobenchError

LOCK_NAME = ".lock"


class RunBusy(RobenchError):
    """Another live process holds the folder's lock."""


@contextlib.contextmanager
def folder_lock(folder: Path, what: str, enabled: bool = True) -> Iterator[None]:
    """Hold `folder`'s lock for the block, or raise RunBusy naming the holder's PID."""
    if not enabled:
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunBusy(
                f"{what} {folder} is in use by another robench process (PID {holder}); "
                "wait for it or stop it, then rerun"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the flock
