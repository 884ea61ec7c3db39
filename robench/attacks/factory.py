"""The one way an attack object is made: a spec (registered name + parameters) -> `ATTACKS`.

Suites configure PGD through `AttackConfig` (`AttackConfig.spec()`), eval suites name their
attacks directly (`AttackSpec("fog", {"eps": 128.0, "steps": 200})`); either way the attack is
built here, with the runtime's autocast dtype, so no caller configures an attack by hand.
"""

from __future__ import annotations

from robench.attacks.base import Attack
from robench.attacks.registry import ATTACKS
from robench.config import AttackConfig, AttackSpec
from robench.runtime import Runtime


def build_attack(spec: AttackSpec | AttackConfig, runtime: Runtime | None = None) -> Attack:
    """The registered attack `spec` names, configured for `runtime` (float32 without one)."""
    if isinstance(spec, AttackConfig):
        spec = spec.spec()
    attack = ATTACKS.create(spec.name, **dict(spec.params))
    attack.amp_dtype = None if runtime is None else runtime.amp_dtype
    return attack
