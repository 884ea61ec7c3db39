"""autoattack: AutoAttack standard (APGD-CE, APGD-T, FAB-T, Square), L-inf 8/255, beside PGD-20.

PGD-20 runs on the same images, so the row shows how much AutoAttack adds, and `worst_ra` is
the per-example worst case of the two. AutoAttack carries its own gradient-free cross-check
(Square, 5000 queries, on every point the gradient attacks left), so this suite runs no
separate one; its masking warnings become aa_* flags. Only --eps and --norm apply: AutoAttack is
parameter-free, and its PGD-20 comparison keeps the default steps.
"""

from __future__ import annotations

from typing import ClassVar

from robench.attacks.autoattack import VERSION
from robench.columns import (
    PROTOCOL_SHOWN,
    PUBLISHED,
    RUN_ROW_SHOWN,
    TA,
    BoardSchema,
    Column,
    eval_board,
)
from robench.config import AttackConfig, AttackSpec
from robench.epsilon import parse_eps
from robench.eval.suites.base import (
    CLEAN,
    EvalOptions,
    EvalSuite,
    Evaluation,
    Rows,
    Scorer,
    add_flags,
)
from robench.eval.suites.cross_check import untouched_flags
from robench.eval.suites.pgd20 import PGD20_ATTACK, PGD20_L2_ATTACK, pgd_attack, pgd_evaluation
from robench.eval.suites.registry import EVAL_SUITES
from robench.flags import percent

AUTOATTACK_EPS = "8/255"
AUTOATTACK_EPS_BY_NORM = {"linf": AUTOATTACK_EPS, "l2": "0.5"}  # RobustBench's CIFAR-10 budgets
DEFAULT_BATCH = 250  # AutoAttack's internal forward batch when the target sets none


def autoattack_board(name: str) -> BoardSchema:
    """The board of an AutoAttack suite (L-inf or L2): AutoAttack beside PGD-20."""
    return eval_board(
        name,
        (
            TA,
            Column("aa_ra", "float64", "robust accuracy under AutoAttack (standard), %"),
            Column("pgd20_ra", "float64", "robust accuracy under robench's PGD-20, same images, %"),
            Column("worst_ra", "float64", "per-example worst case of AutoAttack and PGD-20, %"),
            Column(
                "aa_version",
                "string",
                "AutoAttack version: standard = APGD-CE, APGD-T, FAB-T, Square",
            ),
            *PUBLISHED,
        ),
        compared=("ta", "aa_ra", "pgd20_ra"),
        percent=("ta", "aa_ra", "pgd20_ra", "worst_ra"),
        shown=(
            *RUN_ROW_SHOWN,
            *("ta", "aa_ra", "pgd20_ra", "worst_ra", "published_ta", "published_aa"),
            *PROTOCOL_SHOWN,
            "flags",
        ),
        compact=("run", "scenario", "eps", "precision", "ta", "aa_ra", "pgd20_ra", "worst_ra"),
    )


BOARD = autoattack_board("autoattack")


@EVAL_SUITES.register("autoattack")
class AutoAttackSuite(EvalSuite):
    name = "autoattack"
    order = 1
    description = "AutoAttack standard (APGD-CE, APGD-T, FAB-T, Square), L-inf 8/255, beside PGD-20"
    board = BOARD
    accepts = ("eps", "norm")
    flag_metrics: ClassVar[dict[str, str]] = {
        "ta": "clean",
        "aa_ra": "autoattack",
        "pgd20_ra": "pgd",
    }
    refusal = (
        "AutoAttack is parameter-free: only --eps and --norm apply (its PGD-20 comparison "
        "keeps the default steps)"
    )

    norm: ClassVar[str] = "linf"
    default_eps: ClassVar[str] = AUTOATTACK_EPS
    pgd_base: ClassVar[AttackConfig] = PGD20_ATTACK

    def _threat(self, options: EvalOptions) -> tuple[str, str]:
        """(norm, eps): the suite's, or --norm's with its default eps, under --eps."""
        norm = options.overrides.norm or self.norm
        default = self.default_eps if norm == self.norm else AUTOATTACK_EPS_BY_NORM[norm]
        return norm, options.overrides.eps or default

    def _evaluations(self, options: EvalOptions, batch_size: int) -> list[Evaluation]:
        norm, eps = self._threat(options)
        params = {"eps": parse_eps(eps), "batch_size": batch_size}
        if norm != "linf":  # L-inf keeps the flag files it always had
            params["norm"] = norm
        aa = AttackSpec("autoattack", params)
        only_eps = EvalOptions(overrides=options.overrides.only(("eps", "norm")))
        pgd = pgd_evaluation(pgd_attack(only_eps, self.pgd_base))
        return [CLEAN, pgd, Evaluation("autoattack", aa)]

    def evaluations(self, options: EvalOptions) -> list[Evaluation]:
        return self._evaluations(options, options.batch_size or DEFAULT_BATCH)

    def rows(self, scorer: Scorer) -> Rows:
        options = scorer.options
        clean, pgd, aa = (scorer.flags(e) for e in self._evaluations(options, scorer.batch_size))
        norm, eps = self._threat(options)
        columns = {
            "attack": f"autoattack-{VERSION}",
            "norm": norm,
            "eps": eps,
            "eps_value": parse_eps(eps),
            "step_size": "adaptive",
            "steps": 100,
            "restarts": 1,
        }
        row = scorer.row(self.name, columns, options.overrides.text(("eps", "norm")))
        row.update(
            ta=percent(clean.measured),
            aa_ra=percent(aa.measured),
            pgd20_ra=percent(pgd.measured),
            worst_ra=percent(aa.measured & pgd.measured),
            aa_version=VERSION,
        )
        add_flags(row, aa.warnings)
        add_flags(row, untouched_flags(clean.measured, aa.measured))
        return {self.board.name: [row]}


@EVAL_SUITES.register("autoattack-l2")
class AutoAttackL2Suite(AutoAttackSuite):
    """AutoAttack standard in the L2 threat model (eps 0.5), beside L2 PGD-20."""

    name = "autoattack-l2"
    order = 6
    in_all = False
    description = "AutoAttack standard, L2 eps 0.5, beside L2 PGD-20"
    board = autoattack_board("autoattack-l2")
    norm = "l2"
    default_eps = "0.5"
    pgd_base = PGD20_L2_ATTACK
