"""Moving theta_p (the trunk) from a pretraining run into a fine-tuning model.

Exactly the trunk is inherited (stem + stages 1-3); stage 4 and the classifier stay freshly
initialised. Every trunk key must be present with the right shape: the authors' loader used
strict=False and silently loaded nothing when keys were prefixed.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from robench.errors import CheckpointError
from robench.models import Classifier
from robench.runs import checkpoint as ckpt

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
