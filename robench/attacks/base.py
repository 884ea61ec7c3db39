"""What every attack shares, so an individual attack is only its optimisation loop.

The base class owns the things that silently break robustness numbers when each attack does
them its own way: the model's mode during crafting (eval by default: BatchNorm must not learn
from, or be normalised by, adversarial batches), restoring that mode afterwards, gradients on
even inside a `no_grad` caller, and a check, once per batch, that the result stays inside the
attack's threat model. What that threat model is belongs to the kind of attack: a pixel norm
ball (`NormBallAttack`: PGD, AutoAttack) or a budget on an attack's own variables (the
unforeseen attacks), so the check is abstract here.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import get_args

import torch
from torch import nn

from robench.config.choices import BNMode
from robench.distributed import Shard
from robench.errors import ConfigError

BN_MODES: tuple[str, ...] = get_args(BNMode)
EVAL_STREAM = 11  # keeps evaluation seeds apart from training's (seed, epoch, step) seeds


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


def generator_seed(generator: torch.Generator | None) -> int:
    """A seed for a third-party attack that seeds itself, from the batch's generator."""
    return 0 if generator is None else generator.initial_seed() % (2**31)


@contextlib.contextmanager
def own_global_rng(x: torch.Tensor) -> Iterator[None]:
    """torch's global random state (on x's device too) restored after the block: for
    third-party attacks (pyautoattack, torchattacks) that draw from or reseed it."""
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


@contextlib.contextmanager
def frozen_weights(model: nn.Module) -> Iterator[None]:
    """The model's parameters not requiring gradients inside the block (restored after).

    An attack needs d loss / d input only. Eager autograd skips weight gradients nobody asked
    for, but a torch.compile'd forward has one compiled backward for every input that
    requires grad, weights included: under the fast path each PGD step would compute (and
    drop) all weight gradients. Frozen, the compiled attack graph differentiates the input
    alone (compiled once more, next to the training graph, which keeps its weight grads).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def input_gradients(value: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """d value / d each input; zeros for an input the value does not depend on through
    autograd (a model that detaches its input). The attack then cannot move, which is the
    honest outcome: the evaluation's sanity check flags the model (zero_gradients), and no
    attack crashes on it."""
    if not value.requires_grad:
        return [torch.zeros_like(x) for x in inputs]
    grads = torch.autograd.grad(value, inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)]


class Attack(ABC):
    """An untargeted attack on [0, 1] inputs."""

    name: str = ""
    # Can attack one rank's slice of a global batch exactly as the whole batch would be
    # attacked (its randomness drawn for the global batch and sliced): see `perturb`.
    shardable: bool = False
    # An evaluation may share whole batches out across torchrun ranks (False: the attack owns
    # its batching, and rank 0 runs it alone).
    distributable: bool = True
    # The random stream an evaluation seeds each batch's generator from (see robench.flags).
    seed_stream: int = EVAL_STREAM

    def __init__(self, *, bn_mode: str = "eval") -> None:
        if bn_mode not in BN_MODES:
            raise ConfigError(f"{self.name}: bn_mode {bn_mode!r} must be one of {BN_MODES}")
        self.bn_mode = bn_mode
        self.amp_dtype: torch.dtype | None = None
        # What the attack noticed about the model while crafting (AutoAttack's sanity
        # warnings, as flags); an evaluation records them in its row.
        self.warnings: set[str] = set()

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
        with self.crafting(model):
            x_adv = self._perturb(model, x.detach(), y, generator, **extra).detach()
        self._check_budget(x, x_adv)
        return x_adv

    @contextlib.contextmanager
    def crafting(self, model: nn.Module) -> Iterator[None]:
        """The model in the attack's BatchNorm mode and its weights frozen (both restored
        after), gradients enabled."""
        with model_mode(model, self.bn_mode == "train"), frozen_weights(model), torch.enable_grad():
            yield

    def eval_batch_size(self, batch_size: int) -> int:
        """The batch an evaluation should attack at once, given the one it asks for."""
        return batch_size

    @abstractmethod
    def _perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor: ...

    @abstractmethod
    def _check_budget(self, x: torch.Tensor, x_adv: torch.Tensor) -> None:
        """Raise RuntimeError when x_adv lies outside the threat model around x."""

    def _autocast(self, x: torch.Tensor) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=x.device.type, dtype=self.amp_dtype)
