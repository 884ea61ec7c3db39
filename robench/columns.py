"""The vocabulary every board is written in: `Column`, `BoardSchema`, and the shared groups.

Every number carries its protocol (attack, eps as a fraction string and as a float, steps,
restarts, number of images, seed, data set and whether it is the JPEG copy, device, version,
git revision, the training suite and its hash, date). The groups below spell those columns
once; each eval suite (robench/eval/suites/) declares the schema of the board it fills with
them, the paper tables (robench/leaderboard/schema.py) declare theirs, and
`robench.leaderboard.SCHEMAS` indexes all of them. It sits at the bottom of the package so
that both the stages that produce rows and the results layer that stores them can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from robench.errors import ConfigError

Display = Literal["rows", "metrics", "path"]
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def check_row_name(name: str, what: str) -> str:
    """A name that becomes a board's `run` cell: printable, one line, never a formula."""
    if not name or not name.isprintable() or name.startswith(FORMULA_STARTS):
        raise ConfigError(
            f"{what} {name!r}: a row name must be printable text that does not start with "
            "= + - @ (a spreadsheet would run it as a formula)"
        )
    return name


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # pandas dtype: string, float64, Int64, Float64, boolean
    doc: str


@dataclass(frozen=True)
class BoardSchema:
    """One board: its columns, what identifies a row, what `diff` compares, how it is shown."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # what identifies a row: upserts replace, diffs match on it
    metrics: tuple[str, ...]  # what `leaderboard diff` compares against a tolerance
    percent: tuple[str, ...] = ()  # metrics that must lie in [0, 100]
    # Documents (Markdown, the HTML report) show these columns (empty: all of them).
    shown: tuple[str, ...] = ()
    # The report's compact table: identity and headline metrics (empty: identity + metrics).
    compact: tuple[str, ...] = ()
    # The terminal: one row per run ("rows"), the board on its side with these metrics as rows
    # ("metrics", for wide boards), or only where the file is ("path", for long boards).
    display: Display = "rows"
    display_metrics: tuple[str, ...] = ()

    @property
    def intervals(self) -> tuple[str, ...]:
        """The metrics that carry a 95% interval (`<metric>_lo`, `<metric>_hi` columns)."""
        names = set(self.names)
        return tuple(c for c in self.names if c + LO in names and c + HI in names)

    @property
    def dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in self.columns}

    @property
    def match_key(self) -> tuple[str, ...]:
        """The key without the model's identity: what two reproductions' rows match on (the
        same run name and protocol from two machines are the same row to `diff`)."""
        return tuple(k for k in self.key if k != MODEL_ID.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


PROVENANCE = (
    Column("attack", "string", "attack name, e.g. pgd-linf"),
    Column(
        "norm",
        "string",
        "threat model: linf or l2 (empty: no L-p ball, e.g. the unforeseen attacks); a board "
        "without this column is L-inf",
    ),
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
    Column(
        "precision",
        "string",
        "arithmetic of the evaluation's forward passes: fp32 (the default) or bf16 (autocast)",
    ),
    Column("torch_version", "string", "torch build that produced the row"),
    Column(
        "schema_version",
        "Int64",
        "board format: 2 adds the 95% intervals (<metric>_lo/_hi), precision, torch_version "
        "and the flag pointers; a board without this column is version 1",
    ),
)
# A model's own published numbers beside robench's (a RobustBench zoo model's; else empty).
PUBLISHED = (
    Column(
        "published_ta",
        "float64",
        "the model's published clean accuracy, % (RobustBench's, for a zoo model; else empty)",
    ),
    Column("published_aa", "float64", "its published AutoAttack robust accuracy, %"),
    Column(
        "published_source",
        "string",
        "where the published numbers come from, e.g. RobustBench model_info @ 78fcc9e",
    ),
)
SCHEMA_VERSION = 2
# Columns whose absence says their value: a board without `norm` is L-inf (it came before L2);
# one without the published columns holds no model with published numbers.
IMPLIED = ("norm", *(c.name for c in PUBLISHED))
# The columns version 2 added: a version-1 board lacks them and still validates.
V2_PROVENANCE = ("precision", "torch_version", "schema_version", "norm")
# ... and those added while version 1 was current (the model identity, the masking
# cross-check): boards written before them are version-1 boards too.
V1_LATE = (
    "model_id",
    "worst_ra",
    "cross_check",
    "cross_check_n",
    "cross_check_queries",
    "cross_check_fooled",
)
ATTACK_COLUMNS = ("attack", "norm", "eps", "eps_value", "step_size", "steps", "restarts")

RUN = (
    Column("run", "string", "run name (the run directory's name)"),
    Column("pretext", "string", "pretext task of the pretraining, or none"),
    Column("scenario", "string", "P1-P3 x F1-F4, the paper's Table 2"),
    Column("model", "string", "architecture"),
    Column("checkpoint", "string", "best_ta (the paper's selection), best_ra or last"),
    Column("epochs_to_best", "Int64", "epoch at which the evaluated checkpoint was reached"),
)
SUITE = Column("suite", "string", "evaluation suite")
TA = Column("ta", "float64", "clean test accuracy, %")

HONESTY = (
    Column(
        "flags",
        "string",
        "what makes the row's number doubtful (empty = nothing): sanity checks "
        "(zero_gradients:k/n, nonfinite_gradients:k/n, softmax_output, randomized, "
        "training_mode), the masking cross-check (gradient_masking_suspected:k/n, "
        "attack_changed_no_prediction, cross_check_off); AutoAttack's own as aa_*",
    ),
    Column("overrides", "string", "attack settings overridden on the command line, e.g. steps=10"),
)
MODEL_ID = Column(
    "model_id",
    "string",
    "what was evaluated, part of the key: run:<hash of the run directory and training-suite "
    "hash>, weights:<hash of the weights' tensors>, ensemble:<hash of its members' ids>",
)
FLAG_POINTERS = (
    Column(
        "flag_dir",
        "string",
        "the folder of the per-example flags the row was computed from (paired tests read them)",
    ),
    Column(
        "flag_files",
        "string",
        "metric=file for the metrics that are one evaluation's flags, e.g. "
        "ta=clean-<key>.npz;ra=pgd-<key>.npz (files in flag_dir)",
    ),
)
TAIL = (
    *HONESTY,
    Column(
        "eval_seconds",
        "float64",
        "seconds the evaluation took (its flags' compute time, resumed parts included)",
    ),
    Column("run_dir", "string", "the run directory evaluated (an ensemble: all of them)"),
    MODEL_ID,
    *FLAG_POINTERS,
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
    "precision",  # a bf16 evaluation is a row beside the fp32 one, never in its place
    "model_id",
)
# What documents show of a run's evaluation row (the CSV keeps every column).
RUN_ROW_SHOWN = ("run", "pretext", "scenario", "model", "checkpoint")
PROTOCOL_SHOWN = ("attack", "eps", "steps", "restarts", "n_eval", "seed", "dataset", "device")


LO, HI = "_lo", "_hi"


def interval_columns(metric: str) -> tuple[Column, Column]:
    """The 95% interval of a percentage metric: `<metric>_lo` and `<metric>_hi`."""
    return (
        Column(metric + LO, "float64", f"lower end of the 95% Wilson interval of {metric}, %"),
        Column(metric + HI, "float64", f"upper end of the 95% Wilson interval of {metric}, %"),
    )


def with_intervals(columns: tuple[Column, ...], percent: tuple[str, ...]) -> tuple[Column, ...]:
    """`columns`, each percentage among them followed by its interval's two columns."""
    out: list[Column] = []
    for column in columns:
        out.append(column)
        if column.name in percent:
            out.extend(interval_columns(column.name))
    return tuple(out)


def interval_percent(percent: tuple[str, ...]) -> tuple[str, ...]:
    """A schema's `percent`: the percentages and their intervals' ends (all in [0, 100])."""
    return (*percent, *(m + end for m in percent for end in (LO, HI)))


def is_v2_column(name: str) -> bool:
    """A column a version-1 board may lack (see `SCHEMA_VERSION` and `V1_LATE`)."""
    pointers = {c.name for c in FLAG_POINTERS}
    return name.endswith((LO, HI)) or name in (*V2_PROVENANCE, *V1_LATE) or name in pointers


def eval_board(
    name: str,
    metrics: tuple[Column, ...],
    *,
    compared: tuple[str, ...],
    percent: tuple[str, ...],
    provenance: tuple[Column, ...] = PROVENANCE,
    key: tuple[str, ...] = ROW_KEY,
    shown: tuple[str, ...] = (),
    compact: tuple[str, ...] = (),
    display: Display = "rows",
    display_metrics: tuple[str, ...] = (),
) -> BoardSchema:
    """The board of an eval suite: run identity, the suite's metrics, protocol, honesty."""
    return BoardSchema(
        name=name,
        columns=(RUN[0], SUITE, *RUN[1:], *with_intervals(metrics, percent), *provenance, *TAIL),
        key=key,
        metrics=compared,
        percent=interval_percent(percent),
        shown=shown,
        compact=compact,
        display=display,
        display_metrics=display_metrics,
    )
