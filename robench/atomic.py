"""Write-then-rename, so a crash mid-write leaves the previous good file, never half a file."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robench.errors import RobenchError

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


class DiskFullError(RobenchError):
    """The disk (or quota) filled up while writing; the previous file is untouched."""


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()  # mkstemp creates 0600 files; results should be as readable as any other


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it over `path`.

    A symlink is written through to its target (the link stays a link); a directory in the
    way is a one-line error, not a traceback after the work is done.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if path.is_dir():
        raise RobenchError(f"{path} is a directory; give a file path to write to")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, _MODE)  # after writing: some writers (safetensors) recreate the file
        os.replace(tmp, path)
    except Exception as exc:  # safetensors reports ENOSPC as its own error type
        if getattr(exc, "errno", None) in _NO_SPACE or "No space left" in str(exc):
            raise DiskFullError(
                f"no space left on the device while writing {path}; the previous version of "
                "the file is kept. Free some space and rerun: finished work is skipped and "
                "unfinished work resumes"
            ) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def check_output_dir(path: Path, option: str) -> None:
    """Before any work: `path` can be (or become) a directory this process may write into."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RobenchError(f"{option} {path} is a file, not a directory")
    _check_writable(path, option)


def check_output_file(path: Path, option: str) -> None:
    """Before any work: `path` can be written as a file (not a directory, a writable place)."""
    path = Path(path)
    if path.is_dir():
        raise RobenchError(f"{option} {path} is a directory; give a file path")
    _check_writable(path.parent, option)


def _check_writable(path: Path, option: str) -> None:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise RobenchError(f"{option} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RobenchError(f"{option} {path}: {existing} is not writable")
