"""Checkpoints as safetensors + a JSON metadata file beside them.

safetensors holds only tensors, so loading one can never execute code (unlike a pickle).
The JSON says what the tensors are (architecture, pretext, scenario, epoch, git revision,
versions) so a checkpoint can be rebuilt into a model without the suite that made it. The same
JSON is also embedded in the safetensors header, and that copy is the one loading trusts: the
two files are replaced one after the other, and a process killed between the two renames must
not pair epoch-k weights with epoch-(k-1) metadata. Loading
checks every key and shape against the model and fails loudly: a silent partial load (the
authors' strict=False) is the bug this module exists to prevent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from robench.atomic import atomic_write, write_json_atomic
from robench.errors import CheckpointError
from robench.provenance import git_revision, versions

FORMAT = "robench-checkpoint-v1"
META_KEY = "robench_meta"  # the safetensors header entry holding the metadata JSON
MODEL_PREFIX = "model."
OPTIM_PREFIX = "optim."


def checkpoint_paths(stem: Path) -> tuple[Path, Path]:
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_checkpoint(stem: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write `<stem>.safetensors` (metadata embedded) then `<stem>.json`, each atomically."""
    weights, meta_path = checkpoint_paths(stem)
    meta = {"format": FORMAT, "git_revision": git_revision(), "versions": versions(), **metadata}
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {"format": FORMAT, META_KEY: json.dumps(meta, sort_keys=True)}
    atomic_write(weights, lambda tmp: save_file(cpu, str(tmp), metadata=header))
    write_json_atomic(meta_path, meta)


def load_checkpoint(stem: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata; the metadata embedded in the weights file wins over the sidecar."""
    weights, meta_path = checkpoint_paths(stem)
    if not weights.is_file():
        raise CheckpointError(f"checkpoint {weights} does not exist")
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{weights}: corrupt or truncated safetensors file ({exc}); delete it (a run "
            "resumes from its previous checkpoint) or restore it from a backup"
        ) from None
    if META_KEY in header:
        meta = _parse_meta(header[META_KEY], str(weights))
    elif meta_path.is_file():  # checkpoints written before the metadata was embedded
        meta = _parse_meta(meta_path.read_text(encoding="utf-8", errors="replace"), str(meta_path))
    else:
        raise CheckpointError(
            f"{weights} carries no robench metadata (no {META_KEY} header, no {meta_path.name}); "
            "not a robench checkpoint: load foreign weights with `robench eval --model "
            "FILE.py:FACTORY --weights FILE`"
        )
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{weights}: not a robench checkpoint (format {FORMAT} expected)")
    return tensors, meta


def _parse_meta(text: str, source: str) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{source}: corrupt metadata ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{source}: not a robench checkpoint (metadata is not an object)")
    return meta


MAX_CLASSES = 100_000  # a metadata value beyond this is corrupt, not a model to allocate


def meta_int(
    meta: dict[str, Any], key: str, lo: int, hi: int, source: str, default: int | None = None
) -> int:
    """An integer field of checkpoint metadata in [lo, hi], or a one-line CheckpointError."""
    value = meta.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CheckpointError(
            f"{source}: metadata {key} = {value!r} is not an integer in [{lo}, {hi}]"
        )
    return value


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {MODEL_PREFIX + k: v for k, v in model.state_dict().items()}


def load_model_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load the `model.*` tensors into `model`, requiring the exact same keys and shapes."""
    state = {k[len(MODEL_PREFIX) :]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    check_state_matches(model.state_dict(), state, source)
    model.load_state_dict(state, strict=True)


def check_state_matches(
    expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], source: str
) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"{source} does not match the model: keys {', '.join(parts)}")
    for key, ref in expected.items():
        if tuple(found[key].shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{source} does not match the model: {key} has shape "
                f"{tuple(found[key].shape)}, the model expects {tuple(ref.shape)}"
            )


def optimizer_tensors(
    optimizer: torch.optim.Optimizer, model: nn.Module
) -> dict[str, torch.Tensor]:
    """SGD momentum buffers keyed by parameter name, so they survive a safetensors round trip."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0:
                    out[f"{OPTIM_PREFIX}{names[id(p)]}.{key}"] = value
    return out


def load_optimizer_tensors(
    optimizer: torch.optim.Optimizer, model: nn.Module, tensors: dict[str, torch.Tensor]
) -> None:
    params = dict(model.named_parameters())
    for key, value in tensors.items():
        if not key.startswith(OPTIM_PREFIX):
            continue
        name, _, slot = key[len(OPTIM_PREFIX) :].rpartition(".")
        if name not in params:
            raise CheckpointError(f"optimizer state for unknown parameter {name}")
        param = params[name]
        optimizer.state[param][slot] = value.to(param.device, param.dtype)


def load_model_checkpoint(stem: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights, checked key by key."""
    from robench.models import MODELS, attach_rotation_head, create

    tensors, meta = load_checkpoint(stem)
    arch = meta.get("architecture")
    if arch not in MODELS:
        raise CheckpointError(
            f"{stem}: architecture {arch!r} is not a robench model ({', '.join(MODELS.names())})"
        )
    num_classes = meta_int(meta, "num_classes", 1, MAX_CLASSES, str(stem), default=10)
    model = create(arch, num_classes=num_classes)
    if meta.get("auxiliary") == "rotation":  # the Figure 3 baseline's head, unused by forward
        attach_rotation_head(model)
    load_model_tensors(model, tensors, str(checkpoint_paths(stem)[0]))
    return model, meta
