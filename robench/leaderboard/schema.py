"""Every board's schema, indexed: the eval suites' boards and the paper tables' own.

An eval suite declares the schema of the board it fills (robench/eval/suites/); the boards
derived from them (Table 3, Tables 5-8, Figure 3) are declared here, in the vocabulary of
robench/columns.py. `SCHEMAS` is the one index every reader uses: rows are identified by the
schema's key and upserted, never blindly appended; `validate` checks a file against its
schema, and leaderboards/README.md documents every column (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from robench.columns import (
    PROVENANCE,
    RUN,
    BoardSchema,
    Column,
    interval_percent,
    with_intervals,
)
from robench.eval.suites import EVAL_SUITES, get_eval_suite
from robench.eval.suites.unforeseen import COLUMNS as UNFORESEEN_COLUMNS

EVAL_BOARDS: dict[str, BoardSchema] = {
    board.name: board for name in EVAL_SUITES.names() for board in get_eval_suite(name).boards
}
PGD20 = EVAL_BOARDS["pgd20"]
AUTOATTACK = EVAL_BOARDS["autoattack"]
UNFORESEEN = EVAL_BOARDS["unforeseen"]
CORRUPTIONS = EVAL_BOARDS["corruptions"]
CORRUPTIONS_LONG = EVAL_BOARDS["corruptions_long"]

TABLE3 = BoardSchema(
    name="table3",
    columns=(
        Column("pretext", "string", "pretext task (P1 rows repeat under each pretext)"),
        Column("scenario", "string", "P1-P3 x F1-F4"),
        Column("run", "string", "the run behind the cell"),
        *with_intervals(
            (
                Column("ta", "float64", "clean test accuracy, %"),
                Column("ra", "float64", "PGD-20 robust accuracy, %"),
            ),
            ("ta", "ra"),
        ),
        Column("epochs_to_best", "Int64", "epoch of the selected (best validation TA) checkpoint"),
        Column("ta_paper", "float64", "the paper's TA for the cell (ResNet-50v2, CIFAR-10)"),
        Column("ra_paper", "float64", "the paper's RA for the cell"),
        Column("epochs_paper", "Int64", "the paper's epochs for the cell"),
        Column("ta_diff", "float64", "ta - ta_paper"),
        Column("ra_diff", "float64", "ra - ra_paper"),
        Column("epochs_diff", "Float64", "epochs_to_best - epochs_paper"),
        RUN[3],
        *PROVENANCE,
    ),
    key=("pretext", "scenario", "run"),
    metrics=("ta", "ra", "epochs_to_best"),
    percent=interval_percent(("ta", "ra")),
    shown=(
        "pretext",
        "scenario",
        "run",
        "ta",
        "ra",
        "epochs_to_best",
        "ta_paper",
        "ra_paper",
        "epochs_paper",
        "ta_diff",
        "ra_diff",
        "epochs_diff",
    ),
    compact=("pretext", "scenario", "run", "ta", "ra", "ta_paper", "ra_paper", "ra_diff"),
)


def _paper_table(name: str, row_doc: str, *extra: Column) -> BoardSchema:
    """Tables 5-8: one row per paper row (the suite's `[tables.<name>]`), ours beside theirs."""
    return BoardSchema(
        name=name,
        columns=(
            Column("row", "string", row_doc),
            Column("run", "string", "the run (Table 6: the ensemble) behind the row"),
            *extra,
            RUN[1],
            RUN[2],
            Column(
                "pretrain_images",
                "Int64",
                "images the run's pretraining saw (empty: no pretraining or an ensemble)",
            ),
            *with_intervals(
                (
                    Column("ta", "float64", "clean test accuracy, %"),
                    Column("ra", "float64", "PGD-20 robust accuracy, %"),
                ),
                ("ta", "ra"),
            ),
            Column(
                "epochs_to_best", "Int64", "epoch of the selected (best validation TA) checkpoint"
            ),
            Column("ta_paper", "float64", "the paper's TA for the row (ResNet-50v2, CIFAR-10)"),
            Column("ra_paper", "float64", "the paper's RA for the row"),
            Column("epochs_paper", "Int64", "the paper's epochs for the row"),
            Column("ta_diff", "float64", "ta - ta_paper"),
            Column("ra_diff", "float64", "ra - ra_paper"),
            Column("epochs_diff", "Float64", "epochs_to_best - epochs_paper"),
            RUN[3],
            *PROVENANCE,
        ),
        key=("row", "run"),
        metrics=("ta", "ra", "epochs_to_best"),
        percent=interval_percent(("ta", "ra")),
        compact=("row", "run", "ta", "ra", "ta_paper", "ra_paper", "ra_diff"),
    )


TABLE5 = _paper_table(
    "table5",
    "Table 5 row: selfie/rotation/jigsaw_pretraining (single task), ap_se (lambda = 0), "
    "ap_dpe (lambda > 0)",
)
TABLE6 = _paper_table(
    "table6",
    "Table 6 row: the fine-tuned (P3, F4) runs averaged, e.g. jigsaw+rotation",
    Column("members", "string", "the ensemble's member runs, joined by +"),
)
# An ensemble has no epoch of its own: diff and validate compare its TA and RA only.
TABLE6 = replace(TABLE6, metrics=("ta", "ra"))


TABLE7 = _paper_table(
    "table7",
    "Table 7 row: pretraining set size and scenario; the paper's numbers where the name "
    "matches its row (cifar30k_P3F2, cifar50k_P3F4, ...)",
)
TABLE8 = _paper_table(
    "table8",
    "Table 8 row: randsmooth_<pretext>_<F2|F4> (random-smoothing pretraining)",
)

FIGURE3_PERCENT = ("ta", "ra", *UNFORESEEN_COLUMNS, "unforeseen_mean", "unforeseen_worst")
FIGURE3 = BoardSchema(
    name="figure3",
    columns=(
        Column("row", "string", "baseline (Hendrycks et al. one-shot AT + rotation head) or ours"),
        Column("run", "string", "the run behind the row"),
        RUN[1],
        RUN[2],
        *with_intervals(
            (
                Column("ta", "float64", "clean test accuracy, % (PGD-20 evaluation)"),
                Column("ra", "float64", "PGD-20 robust accuracy, %"),
                *(
                    Column(c, "float64", f"accuracy under the unforeseen attack {c}, %")
                    for c in UNFORESEEN_COLUMNS
                ),
                Column(
                    "unforeseen_mean", "float64", "mean of the 12 unforeseen-attack accuracies, %"
                ),
                Column(
                    "unforeseen_worst", "float64", "per-example worst case over the 12 attacks, %"
                ),
            ),
            FIGURE3_PERCENT,
        ),
        Column("unforeseen_n", "Int64", "test images of the unforeseen attacks"),
        Column("unforeseen_overrides", "string", "unforeseen settings overridden, e.g. steps=20"),
        RUN[3],
        *PROVENANCE,
    ),
    key=("row", "run"),
    metrics=("ta", "ra", "unforeseen_mean"),
    percent=interval_percent(FIGURE3_PERCENT),
    compact=("row", "run", "ta", "ra", "unforeseen_mean", "unforeseen_worst"),
)

PAPER_TABLES = (TABLE5, TABLE6, TABLE7, TABLE8)

# RobustBench's published entries as reference rows (`robench leaderboard robustbench`).
ROBUSTBENCH = BoardSchema(
    name="robustbench",
    columns=(
        Column("model_name", "string", "the zoo's model name (robench eval --robustbench NAME)"),
        Column("threat_model", "string", "Linf or L2"),
        Column("dataset", "string", "the data set of the entry (cifar10)"),
        Column("eps", "string", "the budget of the published AutoAttack number, e.g. 8/255"),
        Column("clean_acc", "float64", "published clean accuracy on the CIFAR-10 test set, %"),
        Column("autoattack_acc", "float64", "published AutoAttack robust accuracy, %"),
        Column("reported", "float64", "the robust accuracy the paper itself reported, %"),
        Column("architecture", "string", "the model's architecture"),
        Column("venue", "string", "where the paper appeared"),
        Column("paper", "string", "the paper's title"),
        Column("link", "string", "the paper's address"),
        Column("additional_data", "boolean", "trained with data beyond CIFAR-10's training set"),
        Column("number_forward_passes", "Int64", "forward passes per prediction"),
        Column("unreliable", "boolean", "RobustBench marks the evaluation unreliable"),
        Column("source", "string", "which RobustBench model_info the entry was read from"),
    ),
    key=("model_name", "threat_model", "dataset"),
    metrics=("clean_acc", "autoattack_acc"),
    percent=("clean_acc", "autoattack_acc", "reported"),
    shown=("model_name", "threat_model", "clean_acc", "autoattack_acc", "architecture", "venue"),
)

SCHEMAS: dict[str, BoardSchema] = {
    s.name: s for s in (*EVAL_BOARDS.values(), TABLE3, *PAPER_TABLES, FIGURE3, ROBUSTBENCH)
}


def schema_for(path: Path, frame: pd.DataFrame | None = None) -> BoardSchema | None:
    """The schema named by the file's stem, else the one whose key columns the frame has."""
    if path.stem in SCHEMAS:
        return SCHEMAS[path.stem]
    if frame is not None:
        for schema in SCHEMAS.values():
            if set(schema.names) <= set(frame.columns):
                return schema
    return None
