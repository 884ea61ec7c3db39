"""What every attack shares, so an individual attack is only its optimisation loop.

The base class owns the things that silently break robustness numbers when each attack does
them its own way: the model's mode during crafting (eval by default: BatchNorm must not learn
from, or be normalised by, adversarial batches), restoring that mode afterwards, and checking
that the result stays inside the threat model (the eps-ball and [0, 1]).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from torch import nn

from robench.distributed import Shard
from robench.errors import ConfigError

BN_MODES = ("eval", "train")


@contextlib.contextmanager
def model_mode(model: nn.Module, train: bool) -> Iterator[None]:
    """Put the model in train or eval mode and restore each submodule's own mode afterwards."""
    saved = [(m, m.training) for m in model.modules()]
    model.train(train)
    try:
        yield
    finally:
        for module, was_training in saved:
            module.training = was_training


class Attack(ABC):
    """An untargeted attack within a norm ball around [0, 1] inputs."""

    name: str = ""
    norm: str = "linf"
    # Can attack one rank's slice of a global batch exactly as the whole batch would be
    # attacked (its randomness drawn for the global batch and sliced): see `perturb`.
    shardable: bool = False

    def __init__(self, eps: float, *, bn_mode: str = "eval") -> None:
        if not 0.0 <= eps <= 1.0:
            raise ConfigError(f"{self.name}: eps {eps:g} is outside [0, 1]")
        if bn_mode not in BN_MODES:
            raise ConfigError(f"{self.name}: bn_mode {bn_mode!r} must be one of {BN_MODES}")
        self.eps = eps
        self.bn_mode = bn_mode
        self.amp_dtype: torch.dtype | None = None

    def perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        shard: Shard | None = None,
    ) -> torch.Tensor:
        """Adversarial inputs for (x, y); x is in [0, 1] and is never modified in place.

        With `shard`, (x, y) are rows [start, stop) of a global batch of `total` (one rank's
        slice under torchrun): random starts are drawn for the global batch from `generator`
        and sliced, so each example starts where a single process would start it.
        """
        extra = {}
        if shard is not None:
            if not self.shardable:
                raise ValueError(f"{self.name} cannot attack a slice of a batch")
            if len(x) != shard.size:
                raise ValueError(f"{len(x)} inputs for a shard of {shard.size} rows")
            extra["shard"] = shard
        with model_mode(model, self.bn_mode == "train"), torch.enable_grad():
            x_adv = self._perturb(model, x.detach(), y, generator, **extra).detach()
        self._check_budget(x, x_adv)
        return x_adv

    @abstractmethod
    def _perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor: ...

    def _autocast(self, x: torch.Tensor) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=x.device.type, dtype=self.amp_dtype)

    def _check_budget(self, x: torch.Tensor, x_adv: torch.Tensor) -> None:
        # One reduction and one host sync per batch (not per step): cheap insurance against a
        # projection bug. The message's details are only computed when it fails.
        delta = (x_adv - x).flatten(1)
        size = delta.abs().amax(1) if self.norm == "linf" else delta.norm(dim=1)
        bound = self.eps * (1 + 1e-4) + 1e-6
        ok = (size <= bound).all() & ((x_adv >= 0) & (x_adv <= 1)).all()
        if not bool(ok):
            worst = float(size.max()) if size.numel() else 0.0
            out_of_range = bool(((x_adv < 0) | (x_adv > 1)).any())
            raise RuntimeError(
                f"{self.name} left its threat model: |delta| = {worst:.6f} > eps {self.eps:.6f}"
                f" or values outside [0, 1] ({out_of_range})"
            )
