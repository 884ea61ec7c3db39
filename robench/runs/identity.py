"""What a thing is, as a hash: files (checkpoints, weights, model code) and JSON-able protocols.

Stored flags and kept examples are keyed by these, so a changed model, data set or protocol
starts afresh instead of mixing results of two different things.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (checkpoints can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def combined_sha256(parts: Iterable[str]) -> str:
    """One hash standing for several (an ensemble's members, model code plus its weights)."""
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def protocol_key(protocol: dict[str, Any]) -> str:
    """A short, stable key of everything that determines a result (key order does not matter)."""
    text = json.dumps(protocol, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
