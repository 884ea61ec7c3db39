"""Suite attack settings -> an attack object configured for the runtime."""

from __future__ import annotations

from typing import TypeVar

from robench.attacks.multi_pgd import MultiPGD
from robench.attacks.pgd import PGD
from robench.config import AttackConfig
from robench.runtime import Runtime

P = TypeVar("P", bound=PGD)


def pgd_from_config(cfg: AttackConfig, runtime: Runtime | None = None) -> PGD:
    return _build(PGD, cfg, runtime)


def multi_pgd_from_config(cfg: AttackConfig, runtime: Runtime | None = None) -> MultiPGD:
    """The ensemble's attack: one perturbation per task, same settings as `pgd_from_config`."""
    return _build(MultiPGD, cfg, runtime)


def _build(cls: type[P], cfg: AttackConfig, runtime: Runtime | None) -> P:
    attack = cls(
        cfg.eps_value,
        cfg.step_value,
        cfg.steps,
        norm=cfg.norm,
        restarts=cfg.restarts,
        bn_mode=cfg.bn_mode,
    )
    if runtime is not None:
        attack.amp_dtype = runtime.amp_dtype
    return attack
