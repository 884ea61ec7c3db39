"""corruptions: CIFAR-10-C, 15 corruptions x 5 severities, clean accuracy beside them.

The corrupted copies come from the official files (`--corruptions-dir`) or from robench's own
seeded generator (robench/corruptions/). The wide board has one column per corruption (mean
over severities) and their mean; the long board (`corruptions_long`) one row per corruption
and severity. No attack runs, so no override applies.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from robench.columns import (
    ATTACK_COLUMNS,
    MODEL_ID,
    PROVENANCE,
    RUN,
    RUN_ROW_SHOWN,
    TA,
    V2_PROVENANCE,
    BoardSchema,
    Column,
    eval_board,
    interval_percent,
    with_intervals,
)
from robench.corruptions.source import CORRUPTION_NAMES, OFFICIAL_LABEL, SEVERITIES, generated_label
from robench.eval.suites.base import CLEAN, EvalOptions, EvalSuite, Evaluation, Rows, Scorer
from robench.eval.suites.registry import EVAL_SUITES
from robench.flags import percent

COLUMNS = tuple(CORRUPTION_NAMES)
SOURCE = Column(
    "corruption_source",
    "string",
    "CIFAR-10-C (official) or robench-generated CIFAR-10-C (seed, generator version)",
)

BOARD = eval_board(
    "corruptions",
    (
        TA,
        Column("mean", "float64", "mean accuracy over 15 corruptions x 5 severities, %"),
        *(
            Column(c, "float64", f"accuracy under {c}, mean over severities 1-5, %")
            for c in COLUMNS
        ),
        SOURCE,
    ),
    compared=("ta", "mean", *COLUMNS),
    percent=("ta", "mean", *COLUMNS),
    provenance=tuple(c for c in PROVENANCE if c.name not in ATTACK_COLUMNS),
    key=(
        "run",
        "suite",
        "checkpoint",
        "n_eval",
        "seed",
        "dataset",
        "corruption_source",
        "precision",
        "model_id",
    ),
    shown=(
        *RUN_ROW_SHOWN,
        "ta",
        "mean",
        *COLUMNS,
        "corruption_source",
        "n_eval",
        "dataset",
        "flags",
    ),
    compact=("run", "scenario", "ta", "mean"),
    display="metrics",
    display_metrics=("ta", "mean", *COLUMNS),
)

LONG_BOARD = BoardSchema(
    name="corruptions_long",
    columns=(
        RUN[0],
        RUN[4],
        Column("corruption", "string", "CIFAR-10-C corruption name"),
        Column("severity", "Int64", "severity 1-5"),
        *with_intervals(
            (Column("accuracy", "float64", "accuracy on that corruption and severity, %"),),
            ("accuracy",),
        ),
        Column("corruption_source", "string", "official or robench-generated (seed, version)"),
        Column("n_eval", "Int64", "test images evaluated: the first n in the data set's order"),
        Column("seed", "Int64", "seed of the corruption generator"),
        Column("dataset", "string", "data set label; says when it is a JPEG copy"),
        Column("is_jpeg_copy", "boolean", "true when the clean images are a lossy JPEG copy"),
        Column("device", "string", "cpu or the GPU's name"),
        Column("robench_version", "string", "robench version that produced the row"),
        Column("git_revision", "string", "robench commit (+dirty with local changes)"),
        Column("date", "string", "UTC time the row was written (ISO 8601)"),
        *(c for c in PROVENANCE if c.name in V2_PROVENANCE and c.name != "norm"),
        MODEL_ID,
    ),
    key=(
        "run",
        "checkpoint",
        "corruption",
        "severity",
        "n_eval",
        "seed",
        "dataset",
        "corruption_source",
        "precision",
        "model_id",
    ),
    metrics=("accuracy",),
    percent=interval_percent(("accuracy",)),
    display="path",
)


def corruption_source(options: EvalOptions) -> str:
    return OFFICIAL_LABEL if options.corruptions_dir else generated_label(options.seed)


@EVAL_SUITES.register("corruptions")
class CorruptionsSuite(EvalSuite):
    name = "corruptions"
    order = 3
    description = "CIFAR-10-C: 15 corruptions x 5 severities (official files or generated)"
    board = BOARD
    extra_boards = (LONG_BOARD,)
    flag_metrics: ClassVar[dict[str, str]] = {"ta": "clean"}
    refusal = "the corruptions suite has no attack: --eps/--steps/--step-size/--norm do not apply"

    def evaluations(self, options: EvalOptions) -> list[Evaluation]:
        corrupted = [
            Evaluation(f"{name}_{severity}", corruption=(name, severity))
            for name in CORRUPTION_NAMES
            for severity in SEVERITIES
        ]
        return [CLEAN, *corrupted]

    def rows(self, scorer: Scorer) -> Rows:
        clean, *corrupted = self.evaluations(scorer.options)
        accuracy = {e.name: percent(scorer.flags(e).measured) for e in corrupted}
        source = corruption_source(scorer.options)
        row = {k: v for k, v in scorer.row(self.name, {}, "").items() if k in self.board.dtypes}
        row.update(ta=percent(scorer.flags(clean).measured), corruption_source=source)
        row["mean"] = float(np.mean(list(accuracy.values())))
        long_rows = []
        for e in corrupted:
            assert e.corruption is not None
            name, severity = e.corruption
            row[name] = row.get(name, 0.0) + accuracy[e.name] / len(SEVERITIES)
            long_rows.append(
                {
                    **scorer.long_row(),
                    "corruption": name,
                    "severity": severity,
                    "accuracy": accuracy[e.name],
                    "corruption_source": source,
                }
            )
        return {self.board.name: [row], LONG_BOARD.name: long_rows}
