"""Moving theta_p (the trunk) from a pretraining run, or from an exported model, into a
fine-tuning model.

Exactly the trunk is inherited (stem + stages 1-3); stage 4 and the classifier stay freshly
initialised. Every trunk key must be present with the right shape: the authors' loader used
strict=False and silently loaded nothing when keys were prefixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from robench.config import RunSpec
from robench.config.specs import TrunkSource
from robench.errors import CheckpointError, RobenchError
from robench.models import Classifier
from robench.runs import RunDir
from robench.runs import checkpoint as ckpt
from robench.runs.identity import file_sha256
from robench.train.lifecycle import PRETRAIN_FOLDER

TRUNK_PREFIX = "trunk."


def trunk_tensors(model: Classifier) -> dict:
    return {TRUNK_PREFIX + k: v for k, v in model.trunk.state_dict().items()}


def load_trunk(model: Classifier, stem: Path) -> dict:
    """Load a pretraining run's trunk checkpoint into `model.trunk`; returns its metadata."""
    tensors, meta = ckpt.load_checkpoint(stem)
    state = {k[len(TRUNK_PREFIX) :]: v for k, v in tensors.items() if k.startswith(TRUNK_PREFIX)}
    if not state:
        raise CheckpointError(f"{stem}: holds no trunk weights (no '{TRUNK_PREFIX}*' keys)")
    if meta.get("architecture") != model.arch:
        raise CheckpointError(
            f"{stem}: trunk of a {meta.get('architecture')!r}, the fine-tuning model is "
            f"{model.arch!r}"
        )
    ckpt.check_state_matches(model.trunk.state_dict(), state, str(stem))
    model.trunk.load_state_dict(state, strict=True)
    return meta


def freeze(module: nn.Module) -> None:
    """No gradients and BatchNorm in eval mode: a frozen trunk stays bit-identical."""
    module.requires_grad_(False)
    module.eval()


def inherit_trunk(run: RunSpec, model: Classifier, out_dir: Path) -> dict[str, Any] | None:
    """Load the trunk `run` starts from (its pretraining's, or an exported one) into `model`;
    what config.json records about it (None: trained from scratch)."""
    if run.trunk is not None:
        return _inherit_exported_trunk(run.trunk, model)
    if run.pretraining is None:
        return None
    source = RunDir(out_dir / PRETRAIN_FOLDER / run.pretraining.name)
    if not source.is_finished():
        raise RobenchError(
            f"run {run.name} starts from pretraining {run.pretraining.name!r}, which has not "
            f"finished under {source.path}; `robench train` trains it first when the suite "
            "names it"
        )
    stem = source.path / "trunk"
    meta = load_trunk(model, stem)
    return {
        "pretraining": run.pretraining.name,
        "path": str(source.path),
        "trunk_sha256": file_sha256(stem.with_suffix(".safetensors")),
        "pretext": meta.get("pretext"),
        "epoch": meta.get("epoch"),
    }


def _inherit_exported_trunk(trunk: TrunkSource, model: Classifier) -> dict[str, Any]:
    """The trunk of an exported model (`pretrain = "trunk:..."`), key by key and shape by shape."""
    from robench.artifacts.hub import trunk_state

    state = trunk_state(trunk.source, model.arch, trunk.weights_sha256)
    ckpt.check_state_matches(model.trunk.state_dict(), state, trunk.source)
    model.trunk.load_state_dict(state, strict=True)
    return {
        "source": trunk.source,
        "trunk_sha256": trunk.weights_sha256,
        "pretext": trunk.pretext,
        "origin": trunk.origin,
    }
