"""What a thing is, as a hash: weights (their tensors), files (model code), JSON-able protocols.

Stored flags and kept examples are keyed by these, so a changed model, data set or protocol
starts afresh instead of mixing results of two different things. Weights are hashed as
tensors, not as files: safetensors may write its header's metadata keys in another order in
another process, so the same weights saved twice (a run killed and resumed, and the same run
uninterrupted) are two different files but one set of tensors and one metadata content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

_BLOCK = 1 << 20


def tensors_sha256(
    tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None
) -> str:
    """SHA-256 of tensors by content: names in sorted order, each with its dtype, shape and
    raw bytes, then the metadata as canonical JSON (key order never matters)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    digest.update(json.dumps(dict(metadata or {}), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def short_id(kind: str, *parts: str) -> str:
    """A row's model identity: `kind:` and 16 hex digits of the parts' hash."""
    return f"{kind}:{combined_sha256(parts)[:16]}"


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
