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

PGD20 = BoardSchema(
    name="pgd20",
    columns=(
        RUN[0],
        Column("suite", "string", "evaluation suite"),
        *RUN[1:],
        Column("ta", "float64", "clean test accuracy, %"),
        Column("ra", "float64", "robust accuracy, %: correct clean and under attack"),
        *PROVENANCE,
        Column("eval_seconds", "float64", "wall time of the evaluation"),
        Column("run_dir", "string", "the run directory evaluated"),
    ),
    key=(
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
    ),
    metrics=("ta", "ra"),
    percent=("ta", "ra"),
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

SCHEMAS: dict[str, BoardSchema] = {s.name: s for s in (PGD20, TABLE3)}


def schema_for(path: Path, frame: pd.DataFrame | None = None) -> BoardSchema | None:
    """The schema named by the file's stem, else the one whose key columns the frame has."""
    if path.stem in SCHEMAS:
        return SCHEMAS[path.stem]
    if frame is not None:
        for schema in SCHEMAS.values():
            if set(schema.names) <= set(frame.columns):
                return schema
    return None
