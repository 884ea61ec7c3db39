"""Named evaluation suites (`robench eval --suite NAME`): one file and one registry entry each.

pgd20        clean + L-inf PGD-20 (eps 8/255, step 2/255, random start): the paper's RA
autoattack   clean + AutoAttack standard (L-inf 8/255) + PGD-20 on the same images
unforeseen   clean + 12 unforeseen attacks (Kang et al. 2019) + their mean and worst case
corruptions  clean + CIFAR-10-C: 15 corruptions x 5 severities (and the long board)
torchattacks clean + any torchattacks attack (--attack NAME --attack-option KEY=VALUE)
pgd20-l2, autoattack-l2   the same as pgd20 and autoattack in the L2 threat model (eps 0.5)
all          pgd20, autoattack, unforeseen, corruptions: the paper's L-inf protocol

A suite declares its evaluations, the overrides it accepts, how its flags become rows, and its
board's schema with the columns it displays (base.py). A new suite is a file here that
registers itself, plus its import below.
"""

from robench.errors import ConfigError
from robench.eval.suites import autoattack as _autoattack  # noqa: F401  (registers)
from robench.eval.suites import corruptions as _corruptions  # noqa: F401
from robench.eval.suites import pgd20 as _pgd20  # noqa: F401
from robench.eval.suites import torchattacks as _torchattacks  # noqa: F401
from robench.eval.suites import unforeseen as _unforeseen  # noqa: F401
from robench.eval.suites.base import (
    CLEAN,
    EvalOptions,
    EvalSuite,
    Evaluation,
    Overrides,
    Rows,
    Scorer,
)
from robench.eval.suites.registry import EVAL_SUITES

ALL = "all"


def get_eval_suite(name: str) -> EvalSuite:
    if name not in EVAL_SUITES:
        available = ", ".join([*suite_names(), ALL])
        raise ConfigError(f"unknown eval suite {name!r}; available: {available}")
    return EVAL_SUITES.create(name)


def suite_names() -> list[str]:
    """Every registered suite, in the order `all` runs them (each suite's `order`)."""
    return sorted(EVAL_SUITES.names(), key=lambda n: (EVAL_SUITES.get(n).order, n))


def expand_suites(name: str) -> list[EvalSuite]:
    """`all` is every suite; anything else must be one suite's name."""
    if name == ALL:
        return [EVAL_SUITES.create(n) for n in suite_names() if EVAL_SUITES.get(n).in_all]
    return [get_eval_suite(name)]


__all__ = [
    "ALL",
    "CLEAN",
    "EVAL_SUITES",
    "EvalOptions",
    "EvalSuite",
    "Evaluation",
    "Overrides",
    "Rows",
    "Scorer",
    "expand_suites",
    "get_eval_suite",
    "suite_names",
]
