"""Named evaluation suites (`robench eval --suite NAME`).

pgd20 is the paper's evaluation: L-inf PGD, eps 8/255, step 2/255, 20 steps, one random
start, model in eval mode, on the test set.
"""

from __future__ import annotations

from dataclasses import dataclass

from robench.config import AttackConfig
from robench.errors import ConfigError


@dataclass(frozen=True)
class EvalSuite:
    name: str
    attack: AttackConfig
    description: str


EVAL_SUITES: dict[str, EvalSuite] = {
    "pgd20": EvalSuite(
        "pgd20",
        AttackConfig(eps="8/255", step_size="2/255", steps=20, restarts=1),
        "clean accuracy and L-inf PGD-20 (eps 8/255, step 2/255, random start)",
    ),
}


def get_eval_suite(name: str) -> EvalSuite:
    if name not in EVAL_SUITES:
        raise ConfigError(f"unknown eval suite {name!r}; available: {', '.join(EVAL_SUITES)}")
    return EVAL_SUITES[name]
