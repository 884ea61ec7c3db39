"""AutoAttack (Croce & Hein 2020), standard version, through the `pyautoattack` package.

The standard version runs APGD-CE, APGD-T, FAB-T and Square, each only on the examples still
robust. It is registered like every attack ("autoattack"), but it owns its batching (the later
attacks run on full batches of the survivors), so an evaluation hands it CHUNK images at a
time (`eval_batch_size`) and does not share it out across torchrun ranks (`distributable`):
rank 0 runs it while the others wait. robench stores the flags of every finished chunk, so a
killed evaluation resumes at the next chunk (pyautoattack's own `state_path` resume is not
used: in 0.2.0 a restored state leaves `y_adv` undefined and the state file is written in
place, so a kill can leave it torn). AutoAttack's sanity warnings (randomised defence,
probability outputs, zero gradients, Square beating the gradient attacks) are captured from its
logger into `warnings`, and an evaluation records them as flags.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch
from torch import nn

from robench.attacks.norm_ball import NormBallAttack
from robench.attacks.registry import ATTACKS
from robench.errors import ConfigError

VERSION = "standard"
COMPONENTS = ("apgd-ce", "apgd-t", "fab-t", "square")
# Images per AutoAttack call: large enough that the later attacks (APGD-T, FAB-T, Square) run
# on full batches of the survivors, small enough that a killed evaluation loses little.
CHUNK = 1000
_WARNING_FLAGS = {
    "randomized defense": "aa_randomized",
    "probability distribution": "aa_softmax_output",
    "zero gradient": "aa_zero_gradients",
    "Square Attack has decreased": "aa_square_beats_gradient_attacks",
    "dynamic defense": "aa_dynamic",
    "target classes": "aa_n_classes",
}


class AutocastLogits(nn.Module):
    """The model under the attack's autocast, returning float32 logits for AutoAttack."""

    def __init__(
        self, model: nn.Module, autocast: Callable[[], contextlib.AbstractContextManager]
    ) -> None:
        super().__init__()
        self.model = model
        self.autocast = autocast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.model(x).float()


class _WarningCollector(logging.Handler):
    def __init__(self, into: set[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for needle, flag in _WARNING_FLAGS.items():
            if needle in message:
                self.into.add(flag)


@ATTACKS.register("autoattack")
class AutoAttackStandard(NormBallAttack):
    """AutoAttack's standard evaluation, L-inf or L2; `batch_size` is its forward batch."""

    distributable = False
    seed_stream = 13

    def __init__(
        self,
        eps: float,
        *,
        batch_size: int = 250,
        version: str = VERSION,
        norm: str = "linf",
        bn_mode: str = "eval",
    ) -> None:
        self.name = f"autoattack-{version}"
        super().__init__(eps, norm=norm, bn_mode=bn_mode)
        if version != VERSION:
            raise ConfigError(f"autoattack: only the {VERSION!r} version is supported")
        if batch_size < 1:
            raise ConfigError(f"autoattack: batch_size must be >= 1, got {batch_size}")
        self.version = version
        self.batch_size = batch_size

    def eval_batch_size(self, batch_size: int) -> int:
        return max(CHUNK, batch_size)

    def _perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        from pyautoattack import AutoAttack

        # The evaluation's per-chunk generator fixes AutoAttack's seed (its own torch seeding).
        seed = None if generator is None else generator.initial_seed() % (2**31)
        wrapped = AutocastLogits(model, lambda: self._autocast(x)).eval()
        attack = AutoAttack(
            wrapped,
            eps=self.eps,
            norm={"linf": "Linf", "l2": "L2"}[self.norm],
            version=VERSION,
            device=x.device,
            seed=seed,
        )
        attack.verbose = False
        logger = logging.getLogger("auto-attack")
        collector = _WarningCollector(self.warnings)
        logger.addHandler(collector)
        try:
            x_adv, _ = attack.run_standard_evaluation(x.contiguous(), y, batch_size=self.batch_size)
        finally:
            logger.removeHandler(collector)
        return x_adv.to(x.dtype)
