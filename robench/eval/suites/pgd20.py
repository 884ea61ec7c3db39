"""pgd20: clean accuracy and L-inf PGD-20 (eps 8/255, step 2/255, random start), the paper's RA.

Beside RA, every row carries the gradient-masking cross-check (cross_check.py): Square on a
seeded subset, `worst_ra` the worst case of both attacks, flags when Square finds what PGD
could not or PGD changed nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from robench.columns import (
    PROTOCOL_SHOWN,
    PUBLISHED,
    RUN_ROW_SHOWN,
    TA,
    BoardSchema,
    Column,
    eval_board,
)
from robench.config import AttackConfig
from robench.eval.suites import cross_check as masking
from robench.eval.suites.base import (
    CLEAN,
    EvalOptions,
    EvalSuite,
    Evaluation,
    Rows,
    Scorer,
    add_flags,
)
from robench.eval.suites.registry import EVAL_SUITES
from robench.flags import percent

PGD20_ATTACK = AttackConfig(eps="8/255", step_size="2/255", steps=20, restarts=1)
# L2: eps 0.5 (RobustBench's CIFAR-10 L2 budget), step 2.5 * eps / steps (Madry et al.)
PGD20_L2_ATTACK = AttackConfig(eps="0.5", step_size="0.0625", steps=20, restarts=1, norm="l2")


def pgd_board(name: str) -> BoardSchema:
    """The board of a PGD-20 suite (L-inf or L2): TA, RA, the masking cross-check."""
    return eval_board(
        name,
        (
            TA,
            Column("ra", "float64", "robust accuracy, %: correct clean and under attack"),
            Column(
                "worst_ra", "float64", "RA with the cross-check's fooled subset images counted, %"
            ),
            *masking.COLUMNS,
            *PUBLISHED,
        ),
        compared=("ta", "ra"),
        percent=("ta", "ra", "worst_ra"),
        shown=(
            *RUN_ROW_SHOWN,
            *("ta", "ra", "worst_ra", "published_ta", "published_aa", "epochs_to_best"),
            *PROTOCOL_SHOWN,
            "flags",
        ),
        compact=("run", "scenario", "eps", "precision", "ta", "ra", "worst_ra"),
    )


BOARD = pgd_board("pgd20")


PGD20_BY_NORM = {"linf": PGD20_ATTACK, "l2": PGD20_L2_ATTACK}


def pgd_attack(options: EvalOptions, base: AttackConfig = PGD20_ATTACK) -> AttackConfig:
    """PGD-20 (`base`: L-inf or L2) with the command line's --eps / --steps / --step-size;
    --norm picks the other threat model's defaults (L2: eps 0.5, step 0.0625) under them."""
    o = options.overrides
    if o.norm is not None and o.norm != base.norm:
        base = PGD20_BY_NORM[o.norm]
    changes = {"eps": o.eps, "steps": o.steps, "step_size": o.step_size}
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


def pgd_evaluation(cfg: AttackConfig) -> Evaluation:
    return Evaluation("pgd", cfg.spec())


def attack_columns(cfg: AttackConfig) -> dict[str, Any]:
    """The protocol columns of a PGD row."""
    return {
        "attack": f"pgd-{cfg.norm}",
        "norm": cfg.norm,
        "eps": cfg.eps,
        "eps_value": cfg.eps_value,
        "step_size": cfg.step_size,
        "steps": cfg.steps,
        "restarts": cfg.restarts,
    }


@EVAL_SUITES.register("pgd20")
class PGD20Suite(EvalSuite):
    name = "pgd20"
    order = 0
    description = "clean accuracy and L-inf PGD-20 (eps 8/255, step 2/255, random start)"
    board = BOARD
    accepts = ("eps", "steps", "step_size", "norm")
    flag_metrics: ClassVar[dict[str, str]] = {"ta": "clean", "ra": "pgd"}
    base: ClassVar[AttackConfig] = PGD20_ATTACK

    def evaluations(self, options: EvalOptions) -> list[Evaluation]:
        pgd = pgd_evaluation(pgd_attack(options, self.base))
        return [CLEAN, pgd, *masking.cross_check_evaluations(pgd, options, sliced=True)]

    def transferable(self, options: EvalOptions) -> Evaluation:
        return pgd_evaluation(pgd_attack(options, self.base))

    def rows(self, scorer: Scorer) -> Rows:
        options = scorer.options
        cfg = pgd_attack(options, self.base)
        clean = scorer.flags(CLEAN).measured
        evaluation = pgd_evaluation(cfg)
        robust = scorer.flags(evaluation, keep_examples=options.keep_examples).measured
        check = masking.cross_check(scorer, evaluation, robust)
        worst = robust if check is None else check.worst(robust)
        row = scorer.row(self.name, attack_columns(cfg), options.overrides.text())
        row.update(ta=percent(clean), ra=percent(robust), worst_ra=percent(worst))
        row.update(masking.check_columns(check))
        add_flags(row, masking.masking_flags(check, clean, robust))
        return {self.board.name: [row]}


@EVAL_SUITES.register("pgd20-l2")
class PGD20L2Suite(PGD20Suite):
    """The same suite in the L2 threat model: eps 0.5, step 0.0625, Square L2 cross-check."""

    name = "pgd20-l2"
    order = 5
    in_all = False  # `all` is the paper's L-inf protocol
    description = "clean accuracy and L2 PGD-20 (eps 0.5, step 0.0625, random start)"
    board = pgd_board("pgd20-l2")
    base = PGD20_L2_ATTACK
