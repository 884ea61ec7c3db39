"""Suite attack settings -> an attack object configured for the runtime."""

from __future__ import annotations

from robench.attacks.pgd import PGD
from robench.config import AttackConfig
from robench.runtime import Runtime


def pgd_from_config(cfg: AttackConfig, runtime: Runtime | None = None) -> PGD:
    attack = PGD(
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
