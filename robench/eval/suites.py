"""Named evaluation suites (`robench eval --suite NAME`), each a list of named evaluations.

pgd20        clean + L-inf PGD-20 (eps 8/255, step 2/255, random start): the paper's RA
autoattack   clean + AutoAttack standard (L-inf 8/255) + PGD-20 on the same images
unforeseen   clean + 12 unforeseen attacks (Kang et al. 2019: 6 families x 2 strengths,
             200 steps, untargeted) + their mean and per-example worst case
corruptions  clean + CIFAR-10-C: 15 corruptions x 5 severities
all          every suite above, one leaderboard each

Every evaluation has a name (its leaderboard column) and a protocol dict: everything that
determines its per-example flags. Command-line overrides (`--eps`, `--steps`,
`--step-size`) change the protocol and are recorded in the row's `overrides` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from robench.attacks.unforeseen import PROTOCOL_STRENGTHS
from robench.config import AttackConfig
from robench.corruptions.source import CORRUPTION_NAMES, SEVERITIES
from robench.epsilon import parse_eps
from robench.errors import ConfigError
from robench.leaderboard.schema import _strength_column

UNFORESEEN_STEPS = 200  # Kang et al.'s default and the calibration's
UNFORESEEN_CALIBRATION = "kang2019-ata (see robench/attacks/unforeseen/__init__.py)"


@dataclass(frozen=True)
class Evaluation:
    """One per-example measurement; `kind` says how its flags are computed."""

    name: str
    kind: str  # clean | pgd | autoattack | unforeseen | corruption
    protocol: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Overrides:
    """Attack settings given on the command line; recorded in every row they touch."""

    eps: str | None = None
    steps: int | None = None
    step_size: str | None = None

    def __post_init__(self) -> None:
        for name in ("eps", "step_size"):
            value = getattr(self, name)
            if value is not None:
                parsed = parse_eps(value)
                if not 0 < parsed <= 1:
                    raise ConfigError(f"--{name.replace('_', '-')} {value} must be in (0, 1]")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.steps}")

    def text(self, allowed: tuple[str, ...] = ("eps", "steps", "step_size")) -> str:
        return ";".join(f"{k}={getattr(self, k)}" for k in allowed if getattr(self, k) is not None)

    def any(self) -> bool:
        return any(v is not None for v in (self.eps, self.steps, self.step_size))


@dataclass(frozen=True)
class EvalSuite:
    name: str
    description: str
    attack: AttackConfig | None = None  # the PGD settings of pgd20 (and transfer analyses)


PGD20_ATTACK = AttackConfig(eps="8/255", step_size="2/255", steps=20, restarts=1)
AUTOATTACK_EPS = "8/255"

EVAL_SUITES: dict[str, EvalSuite] = {
    "pgd20": EvalSuite(
        "pgd20",
        "clean accuracy and L-inf PGD-20 (eps 8/255, step 2/255, random start)",
        PGD20_ATTACK,
    ),
    "autoattack": EvalSuite(
        "autoattack",
        "AutoAttack standard (APGD-CE, APGD-T, FAB-T, Square), L-inf 8/255, beside PGD-20",
    ),
    "unforeseen": EvalSuite(
        "unforeseen",
        "12 unforeseen attacks (Kang et al. 2019): fog, snow, gabor, elastic, JPEG-Linf, "
        "JPEG-L1 at two strengths each, 200 steps, untargeted",
    ),
    "corruptions": EvalSuite(
        "corruptions", "CIFAR-10-C: 15 corruptions x 5 severities (official files or generated)"
    ),
}
ALL = ("pgd20", "autoattack", "unforeseen", "corruptions")


def get_eval_suite(name: str) -> EvalSuite:
    if name not in EVAL_SUITES:
        raise ConfigError(
            f"unknown eval suite {name!r}; available: {', '.join([*EVAL_SUITES, 'all'])}"
        )
    return EVAL_SUITES[name]


def expand_suites(name: str) -> list[str]:
    """`all` is every suite; anything else must be one suite's name."""
    if name == "all":
        return list(ALL)
    get_eval_suite(name)
    return [name]


def check_overrides(suite: str, overrides: Overrides) -> None:
    """Refuse overrides that mean nothing for a suite instead of silently ignoring them."""
    if suite == "corruptions" and overrides.any():
        raise ConfigError(
            "the corruptions suite has no attack: --eps/--steps/--step-size do not apply"
        )
    if suite == "unforeseen" and (overrides.eps or overrides.step_size):
        raise ConfigError(
            "unforeseen attacks have per-family strengths (Kang et al. scale): only --steps "
            "applies to them"
        )
    if suite == "autoattack" and (overrides.steps or overrides.step_size):
        raise ConfigError(
            "AutoAttack is parameter-free: only --eps applies (its PGD-20 comparison keeps "
            "the default steps)"
        )


def pgd_config(overrides: Overrides) -> AttackConfig:
    changes: dict[str, Any] = {}
    if overrides.eps is not None:
        changes["eps"] = overrides.eps
    if overrides.steps is not None:
        changes["steps"] = overrides.steps
    if overrides.step_size is not None:
        changes["step_size"] = overrides.step_size
    return replace(PGD20_ATTACK, **changes)


def pgd_evaluation(cfg: AttackConfig) -> Evaluation:
    return Evaluation(
        "pgd",
        "pgd",
        {
            "attack": f"pgd-{cfg.norm}",
            "eps": cfg.eps,
            "step_size": cfg.step_size,
            "steps": cfg.steps,
            "restarts": cfg.restarts,
            "bn_mode": cfg.bn_mode,
        },
    )


def unforeseen_evaluations(steps: int | None) -> list[Evaluation]:
    return [
        Evaluation(
            _strength_column(family, strength),
            "unforeseen",
            {"family": family, "strength": strength, "steps": steps or UNFORESEEN_STEPS},
        )
        for family, strengths in PROTOCOL_STRENGTHS.items()
        for strength in strengths
    ]


def corruption_evaluations() -> list[Evaluation]:
    return [
        Evaluation(f"{name}_{severity}", "corruption", {"corruption": name, "severity": severity})
        for name in CORRUPTION_NAMES
        for severity in SEVERITIES
    ]


CLEAN = Evaluation("clean", "clean", {})
