"""The single source of leaderboard column names, types and keys, one schema per board.

Every number carries its protocol (attack, eps as a fraction string and as a float, steps,
restarts, number of images, seed, data set and whether it is the JPEG copy, device, version,
git revision, the training suite and its hash, date). Rows are identified by the schema's key
and upserted, never blindly appended; `validate` checks a file against its schema, and
leaderboards/README.md documents every column (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

NUMERIC = {"float64", "Int64"}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # pandas dtype: string, float64, Int64, boolean
    doc: str


@dataclass(frozen=True)
class BoardSchema:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # what identifies a row: upserts replace, diffs match on it
    metrics: tuple[str, ...]  # what `leaderboard diff` compares against a tolerance
    percent: tuple[str, ...] = ()  # metrics that must lie in [0, 100]

    @property
    def dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in self.columns}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


PROVENANCE = (
    Column("attack", "string", "attack name, e.g. pgd-linf"),
    Column("eps", "string", "attack budget as a fraction of the [0, 1] range, e.g. 8/255"),
    Column("eps_value", "float64", "the same budget as a float"),
    Column("step_size", "string", "attack step size as a fraction, e.g. 2/255"),
    Column("steps", "Int64", "attack iterations"),
    Column("restarts", "Int64", "random restarts (worst case per example)"),
    Column("n_eval", "Int64", "test images evaluated: the first n in the data set's order"),
    Column("seed", "Int64", "seed of the attack's random start"),
    Column("dataset", "string", "data set label; says when it is a JPEG copy"),
    Column("is_jpeg_copy", "boolean", "true when evaluated on a lossy JPEG copy of the data"),
    Column("device", "string", "cpu or the GPU's name"),
    Column("robench_version", "string", "robench version that produced the row"),
    Column("git_revision", "string", "robench commit (+dirty with local changes)"),
    Column("train_suite", "string", "the suite file the run was trained from"),
    Column("train_suite_sha256", "string", "SHA-256 of that suite file"),
    Column("date", "string", "UTC time the row was written (ISO 8601)"),
)

RUN = (
    Column("run", "string", "run name (the run directory's name)"),
    Column("pretext", "string", "pretext task of the pretraining, or none"),
    Column("scenario", "string", "P1-P3 x F1-F4, the paper's Table 2"),
    Column("model", "string", "architecture"),
    Column("checkpoint", "string", "best_ta (the paper's selection), best_ra or last"),
    Column("epochs_to_best", "Int64", "epoch at which the evaluated checkpoint was reached"),
)

HONESTY = (
    Column(
        "flags",
        "string",
        "sanity-check flags (empty = all passed): zero_gradients:k/n, softmax_output, "
        "randomized, training_mode; AutoAttack's own as aa_*",
    ),
    Column("overrides", "string", "attack settings overridden on the command line, e.g. steps=10"),
)
TAIL = (
    *HONESTY,
    Column("eval_seconds", "float64", "wall time of the evaluation"),
    Column("run_dir", "string", "the run directory evaluated (an ensemble: all of them)"),
)
ROW_KEY = (
    "run",
    "suite",
    "checkpoint",
    "attack",
    "eps",
    "step_size",
    "steps",
    "restarts",
    "n_eval",
    "seed",
    "dataset",
    "overrides",
)

PGD20 = BoardSchema(
    name="pgd20",
    columns=(
        RUN[0],
        Column("suite", "string", "evaluation suite"),
        *RUN[1:],
        Column("ta", "float64", "clean test accuracy, %"),
        Column("ra", "float64", "robust accuracy, %: correct clean and under attack"),
        *PROVENANCE,
        *TAIL,
    ),
    key=ROW_KEY,
    metrics=("ta", "ra"),
    percent=("ta", "ra"),
)

AUTOATTACK = BoardSchema(
    name="autoattack",
    columns=(
        RUN[0],
        Column("suite", "string", "evaluation suite"),
        *RUN[1:],
        Column("ta", "float64", "clean test accuracy, %"),
        Column("aa_ra", "float64", "robust accuracy under AutoAttack (standard), %"),
        Column("pgd20_ra", "float64", "robust accuracy under robench's PGD-20, same images, %"),
        Column("worst_ra", "float64", "per-example worst case of AutoAttack and PGD-20, %"),
        Column(
            "aa_version", "string", "AutoAttack version: standard = APGD-CE, APGD-T, FAB-T, Square"
        ),
        *PROVENANCE,
        *TAIL,
    ),
    key=ROW_KEY,
    metrics=("ta", "aa_ra", "pgd20_ra"),
    percent=("ta", "aa_ra", "pgd20_ra", "worst_ra"),
)


def _strength_column(family: str, strength: float) -> str:
    return f"{family}_{strength:g}"


def _unforeseen_columns() -> tuple[str, ...]:
    from robench.attacks.unforeseen import PROTOCOL_STRENGTHS

    return tuple(
        _strength_column(family, s)
        for family, strengths in PROTOCOL_STRENGTHS.items()
        for s in strengths
    )


UNFORESEEN_COLUMNS = _unforeseen_columns()

UNFORESEEN = BoardSchema(
    name="unforeseen",
    columns=(
        RUN[0],
        Column("suite", "string", "evaluation suite"),
        *RUN[1:],
        Column("ta", "float64", "clean test accuracy, %"),
        *(
            Column(c, "float64", f"accuracy under the unforeseen attack {c} (Kang et al. scale), %")
            for c in UNFORESEEN_COLUMNS
        ),
        Column("mean", "float64", "mean of the 12 unforeseen-attack accuracies, %"),
        Column("worst", "float64", "per-example worst case over all 12 attacks, %"),
        *PROVENANCE,
        *TAIL,
    ),
    key=ROW_KEY,
    metrics=("ta", *UNFORESEEN_COLUMNS, "mean"),
    percent=("ta", *UNFORESEEN_COLUMNS, "mean", "worst"),
)


def _corruption_names() -> tuple[str, ...]:
    from robench.corruptions.source import CORRUPTION_NAMES

    return tuple(CORRUPTION_NAMES)


CORRUPTION_COLUMNS = _corruption_names()
CORRUPTION_PROVENANCE = tuple(
    c
    for c in PROVENANCE
    if c.name not in {"attack", "eps", "eps_value", "step_size", "steps", "restarts"}
)

CORRUPTIONS = BoardSchema(
    name="corruptions",
    columns=(
        RUN[0],
        Column("suite", "string", "evaluation suite"),
        *RUN[1:],
        Column("ta", "float64", "clean test accuracy, %"),
        Column("mean", "float64", "mean accuracy over 15 corruptions x 5 severities, %"),
        *(
            Column(c, "float64", f"accuracy under {c}, mean over severities 1-5, %")
            for c in CORRUPTION_COLUMNS
        ),
        Column(
            "corruption_source",
            "string",
            "CIFAR-10-C (official) or robench-generated CIFAR-10-C (seed, generator version)",
        ),
        *CORRUPTION_PROVENANCE,
        *TAIL,
    ),
    key=("run", "suite", "checkpoint", "n_eval", "seed", "dataset", "corruption_source"),
    metrics=("ta", "mean", *CORRUPTION_COLUMNS),
    percent=("ta", "mean", *CORRUPTION_COLUMNS),
)

CORRUPTIONS_LONG = BoardSchema(
    name="corruptions_long",
    columns=(
        RUN[0],
        RUN[4],
        Column("corruption", "string", "CIFAR-10-C corruption name"),
        Column("severity", "Int64", "severity 1-5"),
        Column("accuracy", "float64", "accuracy on that corruption and severity, %"),
        Column("corruption_source", "string", "official or robench-generated (seed, version)"),
        Column("n_eval", "Int64", "test images evaluated: the first n in the data set's order"),
        Column("seed", "Int64", "seed of the corruption generator"),
        Column("dataset", "string", "data set label; says when it is a JPEG copy"),
        Column("is_jpeg_copy", "boolean", "true when the clean images are a lossy JPEG copy"),
        Column("device", "string", "cpu or the GPU's name"),
        Column("robench_version", "string", "robench version that produced the row"),
        Column("git_revision", "string", "robench commit (+dirty with local changes)"),
        Column("date", "string", "UTC time the row was written (ISO 8601)"),
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
    ),
    metrics=("accuracy",),
    percent=("accuracy",),
)

TABLE3 = BoardSchema(
    name="table3",
    columns=(
        Column("pretext", "string", "pretext task (P1 rows repeat under each pretext)"),
        Column("scenario", "string", "P1-P3 x F1-F4"),
        Column("run", "string", "the run behind the cell"),
        Column("ta", "float64", "clean test accuracy, %"),
        Column("ra", "float64", "PGD-20 robust accuracy, %"),
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
    percent=("ta", "ra"),
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
            Column("ta", "float64", "clean test accuracy, %"),
            Column("ra", "float64", "PGD-20 robust accuracy, %"),
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
        percent=("ta", "ra"),
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
TABLE7 = _paper_table(
    "table7",
    "Table 7 row: pretraining set size and scenario; the paper's numbers where the name "
    "matches its row (cifar30k_P3F2, cifar50k_P3F4, ...)",
)
TABLE8 = _paper_table(
    "table8",
    "Table 8 row: randsmooth_<pretext>_<F2|F4> (random-smoothing pretraining)",
)

FIGURE3 = BoardSchema(
    name="figure3",
    columns=(
        Column("row", "string", "baseline (Hendrycks et al. one-shot AT + rotation head) or ours"),
        Column("run", "string", "the run behind the row"),
        RUN[1],
        RUN[2],
        Column("ta", "float64", "clean test accuracy, % (PGD-20 evaluation)"),
        Column("ra", "float64", "PGD-20 robust accuracy, %"),
        *(
            Column(c, "float64", f"accuracy under the unforeseen attack {c}, %")
            for c in UNFORESEEN_COLUMNS
        ),
        Column("unforeseen_mean", "float64", "mean of the 12 unforeseen-attack accuracies, %"),
        Column("unforeseen_worst", "float64", "per-example worst case over the 12 attacks, %"),
        Column("unforeseen_n", "Int64", "test images of the unforeseen attacks"),
        Column("unforeseen_overrides", "string", "unforeseen settings overridden, e.g. steps=20"),
        RUN[3],
        *PROVENANCE,
    ),
    key=("row", "run"),
    metrics=("ta", "ra", "unforeseen_mean"),
    percent=("ta", "ra", *UNFORESEEN_COLUMNS, "unforeseen_mean", "unforeseen_worst"),
)

PAPER_TABLES = (TABLE5, TABLE6, TABLE7, TABLE8)

SCHEMAS: dict[str, BoardSchema] = {
    s.name: s
    for s in (
        PGD20,
        TABLE3,
        AUTOATTACK,
        UNFORESEEN,
        CORRUPTIONS,
        CORRUPTIONS_LONG,
        *PAPER_TABLES,
        FIGURE3,
    )
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
