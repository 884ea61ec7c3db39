"""What an eval suite is: evaluations it measures, overrides it accepts, rows it makes, its board.

Every evaluation has a name (its flag file, and often its leaderboard column) and says what
its flags are computed from: an attack (`AttackSpec`, built through ATTACKS) or none, on the
test set or on a corrupted copy of it. A suite turns the flags of its evaluations into rows of
its board, through a `Scorer` (the Evaluator: flags on demand, resumable, plus the columns
every row shares). Command-line overrides (`--eps`, `--steps`, `--step-size`, `--norm`) change the
evaluations and are recorded in the row's `overrides` column; a suite refuses the ones that
mean nothing for it rather than ignoring them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from robench.columns import PUBLISHED, BoardSchema
from robench.config import AttackSpec, CrossCheckConfig
from robench.epsilon import parse_eps
from robench.errors import ConfigError
from robench.flags import Flags
from robench.stats.intervals import fill_intervals

OVERRIDES = ("eps", "steps", "step_size", "norm")
NORMS = ("linf", "l2")
Rows = dict[str, list[dict[str, Any]]]  # board name -> its rows


@dataclass(frozen=True)
class Evaluation:
    """One per-example measurement: clean, or under `attack`; on the test set or corrupted."""

    name: str
    attack: AttackSpec | None = None
    corruption: tuple[str, int] | None = None  # (name, severity): a CIFAR-10-C copy
    # (images, seed): only that seeded subset of the test set (the masking cross-check's)
    subset: tuple[int, int] | None = None
    # ... and of it only the images still robust under this evaluation (AutoAttack's way:
    # attack what the previous attack left)
    survivors_of: Evaluation | None = None

    def protocol(self) -> dict[str, Any]:
        """Everything about it that determines its flags (part of the flag file's key)."""
        protocol: dict[str, Any] = {
            "attack": None if self.attack is None else self.attack.to_dict(),
            "corruption": None if self.corruption is None else list(self.corruption),
        }
        if self.subset is not None:
            protocol["subset"] = list(self.subset)
        if self.survivors_of is not None:
            protocol["survivors_of"] = {
                "name": self.survivors_of.name,
                **self.survivors_of.protocol(),
            }
        return protocol

    def indices(self, n: int, robust: Callable[[Evaluation], np.ndarray]) -> np.ndarray | None:
        """Which of the n test images it measures (None: all of them, in order).

        `robust(e)` gives evaluation e's robust flags, over the images e measures.
        """
        if self.subset is None:
            return None
        indices = subset_indices(n, *self.subset)
        if self.survivors_of is not None:
            survivors = robust(self.survivors_of)
            if len(survivors) == n:  # an evaluation of every image (or a subset of all n)
                survivors = survivors[indices]
            indices = indices[survivors]
        return indices


SUBSET_STREAM = 0x5C  # keeps the subset's draw apart from every attack's random stream


def subset_indices(n: int, images: int, seed: int) -> np.ndarray:
    """A seeded subset: min(images, n) of the first n images, drawn with `seed`, in order."""
    rng = np.random.default_rng([seed, SUBSET_STREAM])
    return np.sort(rng.choice(n, size=min(images, n), replace=False))


CLEAN = Evaluation("clean")


@dataclass(frozen=True)
class Overrides:
    """Attack settings given on the command line; recorded in every row they touch."""

    eps: str | None = None
    steps: int | None = None
    step_size: str | None = None
    norm: str | None = None  # the threat model: the suite's defaults for it, unless eps is given

    def __post_init__(self) -> None:
        if self.norm is not None and self.norm not in NORMS:
            raise ConfigError(f"--norm {self.norm!r} must be one of {', '.join(NORMS)}")
        for name in ("eps", "step_size"):
            value = getattr(self, name)
            if value is not None:
                parsed = parse_eps(value)
                # eps 0: the attack cannot move, RA = TA (the start of an eps sweep's curve)
                if not (0 <= parsed <= 1 if name == "eps" else 0 < parsed <= 1):
                    bounds = "[0, 1]" if name == "eps" else "(0, 1]"
                    raise ConfigError(f"--{name.replace('_', '-')} {value} must be in {bounds}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.steps}")

    def given(self) -> tuple[str, ...]:
        return tuple(k for k in OVERRIDES if getattr(self, k) is not None)

    def text(self, allowed: tuple[str, ...] = OVERRIDES) -> str:
        return ";".join(f"{k}={getattr(self, k)}" for k in allowed if getattr(self, k) is not None)

    def only(self, allowed: tuple[str, ...]) -> Overrides:
        return Overrides(**{k: getattr(self, k) for k in allowed})


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate, beyond which suite: seed, overrides, sources, what to tolerate."""

    seed: int = 0
    overrides: Overrides = field(default_factory=Overrides)
    corruptions_dir: Path | None = None  # official CIFAR-10-C files; None = generate
    allow_randomized: bool = False
    allow_training_mode: bool = False
    batch_size: int | None = None
    keep_examples: bool = False  # keep the transferable evaluation's adversarial examples
    cross_check: CrossCheckConfig = field(default_factory=CrossCheckConfig)
    precision: str = "fp32"  # of every forward pass of the evaluation (bf16: autocast)
    # --suite torchattacks: the attack's class name and its options, as (key, value) pairs
    bridge: tuple[str, tuple[tuple[str, Any], ...]] | None = None


def add_flags(row: dict[str, Any], flags: list[str] | set[str] | frozenset[str]) -> None:
    """Merge `flags` into a row's `flags` column (sorted, each once)."""
    parts = set(filter(None, str(row.get("flags") or "").split(";"))) | set(flags)
    row["flags"] = ";".join(sorted(parts))


def complete_rows(
    suite: EvalSuite,
    rows: Rows,
    flag_files: dict[str, str],
    published: dict[str, Any] | None = None,
) -> Rows:
    """What every suite's rows get after `rows` (in place): a 95% interval on every
    percentage, from its value and n (robench/stats/intervals.py); in the main board's
    rows `flag_files`, the flag files (evaluation name -> file) of the metrics that are one
    evaluation's flags, for paired tests later; and the model's own published numbers
    (columns.PUBLISHED, empty for robench's runs) in the boards that show them."""
    pointers = ";".join(
        f"{metric}={flag_files[e]}" for metric, e in suite.flag_metrics.items() if e in flag_files
    )
    for row in rows[suite.board.name]:
        row["flag_files"] = pointers
    for board in suite.boards:
        shown = [c.name for c in PUBLISHED if c.name in board.dtypes]
        for row in rows[board.name]:
            fill_intervals(row, board.intervals, lambda _m, r=row: r["n_eval"])
            row.update({c: (published or {}).get(c) for c in shown})
    return rows


class Scorer(Protocol):
    """What a suite asks of the evaluator (robench/eval/evaluator.py)."""

    options: EvalOptions
    batch_size: int

    def flags(self, evaluation: Evaluation, *, keep_examples: bool = False) -> Flags: ...

    def row(self, suite: str, attack: dict[str, Any], overrides: str) -> dict[str, Any]: ...

    def long_row(self) -> dict[str, Any]: ...


class EvalSuite(ABC):
    """A named suite: `robench eval --suite NAME`. One file and one registry entry each."""

    name: str = ""
    description: str = ""
    order: int = 100  # where `--suite all` runs it (cheap, paper-critical suites first)
    board: BoardSchema
    extra_boards: tuple[BoardSchema, ...] = ()  # e.g. the long corruption table
    accepts: tuple[str, ...] = ()  # the overrides that mean something for this suite
    refusal: str = ""  # why the others do not (the one-line error)
    in_all: bool = True  # whether `--suite all` runs it (False: it needs options of its own)
    # The board's metrics that are one evaluation's flags (metric -> evaluation name; "clean"
    # flags for TA): rows point at those flag files, and `robench compare` reads them.
    flag_metrics: ClassVar[dict[str, str]] = {}

    @property
    def boards(self) -> tuple[BoardSchema, ...]:
        return (self.board, *self.extra_boards)

    def check(self, overrides: Overrides) -> None:
        """Refuse overrides that mean nothing for this suite instead of silently ignoring them."""
        refused = [k for k in overrides.given() if k not in self.accepts]
        if refused:
            raise ConfigError(self.refusal)

    @abstractmethod
    def evaluations(self, options: EvalOptions) -> list[Evaluation]:
        """Every evaluation whose flags the suite's rows are made of."""

    @abstractmethod
    def rows(self, scorer: Scorer) -> Rows:
        """The suite's rows, per board, from the flags of its evaluations."""

    def transferable(self, options: EvalOptions) -> Evaluation | None:
        """The evaluation whose adversarial examples a transfer analysis reuses (None: none)."""
        return None
