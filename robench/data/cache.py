"""Decode-once cache for image folders.

Decoding 60,000 small JPEGs costs several seconds of pure Python overhead on every run, while
loading the decoded arrays is a fraction of a second. Entries are keyed by a hash of the
source files' bytes, so an edited folder can never be served stale pixels. Writes are atomic
(temp file + rename) and guarded by a file lock, so a crash or two concurrent runs never leave
or read a half-written file.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import platformdirs
from filelock import FileLock, Timeout

from robench.errors import DataError

Arrays = tuple[np.ndarray, np.ndarray]
Progress = Callable[[str], None]

LOCK_TIMEOUT_S = 900.0


def cache_root() -> Path:
    """The robench cache directory; ROBENCH_CACHE overrides it (tests, shared clusters)."""
    env = os.environ.get("ROBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("robench"))


def decoded_dir() -> Path:
    return cache_root() / "decoded"


def _read(path: Path, n: int) -> Arrays | None:
    """The cached arrays, or None when absent; a damaged file is deleted so it gets rebuilt."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels = f["images"], f["labels"]
        ok = images.dtype == np.uint8 and images.ndim == 4 and images.shape[0] == n
        if ok and labels.shape == (n,):
            return images, labels.astype(np.int64, copy=False)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    path.unlink(missing_ok=True)
    return None


def _write(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=images, labels=labels)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a shared ROBENCH_CACHE must be readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_decode(
    key: str, n: int, build: Callable[[], Arrays], progress: Progress | None = None
) -> Arrays:
    """Arrays for `key` from the cache, or from `build()` (then stored).

    `n` is the expected number of images: a cache file that disagrees is treated as corrupt.
    An unwritable cache directory only costs speed, so it is reported and skipped.
    """
    folder = decoded_dir()
    path = folder / f"{key}.npz"
    hit = _read(path, n)
    if hit is not None:
        return hit
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
        lock.acquire()
    except Timeout:
        raise DataError(
            f"waited {LOCK_TIMEOUT_S:.0f} s for another process decoding into {path}; "
            "wait for it to finish, or set ROBENCH_CACHE to another directory"
        ) from None
    except OSError as e:
        if progress:
            progress(f"cache directory {folder} is not usable ({e.strerror}); decoding uncached")
        return build()
    try:
        hit = _read(path, n)  # another process may have built it while we waited
        if hit is not None:
            return hit
        images, labels = build()
        try:
            _write(path, images, labels)
        except OSError as e:
            if progress:
                progress(f"could not write decode cache {path} ({e.strerror}); continuing")
        return images, labels
    finally:
        lock.release()
