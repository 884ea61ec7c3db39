"""unforeseen: the 12 unforeseen attacks of Kang et al. (2019), their mean and worst case.

Six families (fog, snow, gabor, elastic, JPEG-L-inf, JPEG-L1) at two calibrated strengths each
(robench/attacks/unforeseen/__init__.py), 200 steps, untargeted. `worst` is the per-example
worst case over all 12: an image counts only if every attack left it correctly classified.
Only --steps applies: each family's strengths are on its own scale. The 12 attacks follow
gradients, so every row carries the model's gradient-masking cross-check (cross_check.py):
PGD-20 and Square, L-inf 8/255, on the same seeded subset.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from robench.attacks.unforeseen import PROTOCOL_COLUMNS, PROTOCOL_STRENGTHS, strength_column
from robench.columns import RUN_ROW_SHOWN, TA, Column, eval_board
from robench.config import AttackSpec
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
from robench.eval.suites.pgd20 import PGD20_ATTACK, pgd_evaluation
from robench.eval.suites.registry import EVAL_SUITES
from robench.flags import percent

UNFORESEEN_STEPS = 200  # Kang et al.'s default and the calibration's
CALIBRATION = "kang2019-ata (see robench/attacks/unforeseen/__init__.py)"
COLUMNS = PROTOCOL_COLUMNS
CROSS_CHECKED = pgd_evaluation(PGD20_ATTACK)  # the model's masking check: PGD-20 vs Square

BOARD = eval_board(
    "unforeseen",
    (
        TA,
        *(
            Column(c, "float64", f"accuracy under the unforeseen attack {c} (Kang et al. scale), %")
            for c in COLUMNS
        ),
        Column("mean", "float64", "mean of the 12 unforeseen-attack accuracies, %"),
        Column("worst", "float64", "per-example worst case over all 12 attacks, %"),
        *masking.COLUMNS,
    ),
    compared=("ta", *COLUMNS, "mean"),
    percent=("ta", *COLUMNS, "mean", "worst"),
    shown=(*RUN_ROW_SHOWN, "ta", "mean", "worst", *COLUMNS, "steps", "n_eval", "dataset", "flags"),
    compact=("run", "scenario", "ta", "mean", "worst"),
    display="metrics",
    display_metrics=("ta", *COLUMNS, "mean", "worst"),
)


def unforeseen_evaluations(steps: int | None) -> list[Evaluation]:
    return [
        Evaluation(
            strength_column(family, strength),
            AttackSpec(family, {"eps": strength, "steps": steps or UNFORESEEN_STEPS}),
        )
        for family, strengths in PROTOCOL_STRENGTHS.items()
        for strength in strengths
    ]


@EVAL_SUITES.register("unforeseen")
class UnforeseenSuite(EvalSuite):
    name = "unforeseen"
    order = 2
    description = (
        "12 unforeseen attacks (Kang et al. 2019): fog, snow, gabor, elastic, JPEG-Linf, "
        "JPEG-L1 at two strengths each, 200 steps, untargeted"
    )
    board = BOARD
    accepts = ("steps",)
    flag_metrics: ClassVar[dict[str, str]] = {"ta": "clean", **{c: c for c in COLUMNS}}
    refusal = (
        "unforeseen attacks have per-family strengths (Kang et al. scale): only --steps "
        "applies to them"
    )

    def evaluations(self, options: EvalOptions) -> list[Evaluation]:
        check = masking.cross_check_evaluations(CROSS_CHECKED, options, sliced=False)
        return [CLEAN, *unforeseen_evaluations(options.overrides.steps), *check]

    def rows(self, scorer: Scorer) -> Rows:
        options = scorer.options
        evaluations = unforeseen_evaluations(options.overrides.steps)
        clean = scorer.flags(CLEAN)
        flags = {e.name: scorer.flags(e).measured for e in evaluations}
        columns = {
            "attack": "unforeseen-12 (Kang et al. 2019)",
            "norm": "",
            "eps": CALIBRATION,
            "eps_value": None,
            "step_size": "kang2019-default",
            "steps": options.overrides.steps or UNFORESEEN_STEPS,
            "restarts": 1,
        }
        row = scorer.row(self.name, columns, options.overrides.text(("steps",)))
        row["ta"] = percent(clean.measured)
        row.update({name: percent(f) for name, f in flags.items()})
        row["mean"] = float(np.mean([percent(f) for f in flags.values()]))
        worst = np.logical_and.reduce(list(flags.values()))
        row["worst"] = percent(worst)
        check = masking.cross_check(scorer, CROSS_CHECKED)
        row.update(masking.check_columns(check))
        add_flags(row, masking.masking_flags(check, clean.measured, worst))
        return {self.board.name: [row]}
