"""`robench compare A B`: is A's accuracy really different from B's, on the same images?

A and B are run directories, or the flag folders of ensembles and external models
(`<leaderboard-dir>/.eval-state/...`). The metric is one evaluation's flags (`--suite`'s
`flag_metrics`: ta, ra, aa_ra, one unforeseen attack, ...). Both sides' stored flags are
paired image by image under one protocol (robench/leaderboard/stored_flags.py), and the
difference gets Newcombe's paired interval and the exact McNemar test (robench/stats).
Different images or protocols are refused with one line: a paired test on them means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Group
from rich.table import Table

from robench.errors import RobenchError
from robench.eval.suites import get_eval_suite
from robench.leaderboard.render import plain
from robench.leaderboard.stored_flags import (
    StoredEvaluation,
    flag_folder,
    pair_evaluations,
    stored_evaluations,
)
from robench.stats import PairedComparison, interval_from_flags, paired_comparison
from robench.stats.intervals import estimate


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of one metric of two models, with what it was computed from."""

    suite: str
    metric: str
    a: Path
    b: Path
    evaluation_a: StoredEvaluation
    evaluation_b: StoredEvaluation
    result: PairedComparison


def compare(
    a: Path,
    b: Path,
    *,
    suite: str = "pgd20",
    metric: str = "ra",
    checkpoint: str = "best_ta",
    n: int | None = None,
) -> Comparison:
    """Compare `metric` of A and B on the images both were evaluated on (see the module)."""
    spec = get_eval_suite(suite)
    if metric not in spec.flag_metrics:
        raise RobenchError(
            f"--metric {metric!r}: {suite}'s per-image metrics are {', '.join(spec.flag_metrics)}"
        )
    if n is not None and n < 1:
        raise RobenchError(f"--n must be >= 1, got {n}")
    evaluation, measured = spec.flag_metrics[metric], metric != "ta"
    sides = []
    for path in (a, b):
        folder, model_hash = flag_folder(path, checkpoint)
        found = stored_evaluations(folder, evaluation, measured=measured, model_hash=model_hash)
        if not found:
            raise RobenchError(
                f"{path}: no complete stored {evaluation!r} evaluation ({checkpoint}); run "
                f"robench eval --suite {suite} on it first"
            )
        sides.append(found)
    first, second = pair_evaluations(sides[0], sides[1], n)
    return Comparison(
        suite, metric, a, b, first, second, paired_comparison(first.flags, second.flags)
    )


def comparison_table(c: Comparison) -> Group:
    """The comparison as the terminal shows it: both accuracies, then the difference, its
    interval, the discordant pairs and the test, one line each."""
    r = c.result
    label = c.metric.upper() if c.metric in ("ta", "ra") else c.metric
    table = Table(
        title=plain(f"compare {c.suite} {c.metric}: n={r.n} images, the same for A and B"),
        header_style="bold",
        show_header=True,
    )
    table.add_column("")
    table.add_column("model", overflow="fold")
    table.add_column(f"{label} %", justify="right", no_wrap=True)
    for side, path, evaluation in (("A", c.a, c.evaluation_a), ("B", c.b, c.evaluation_b)):
        acc = interval_from_flags(evaluation.flags)
        table.add_row(side, plain(path), estimate(acc.value, acc.lo, acc.hi))
    lines = plain(
        f"A - B = {r.diff:+.2f} points, 95% interval [{r.diff_lo:+.2f}, {r.diff_hi:+.2f}] "
        f"(Newcombe, paired)\n"
        f"discordant pairs: A right and B wrong {r.only_a}, A wrong and B right {r.only_b} "
        f"(both right {r.both}, both wrong {r.neither})\n"
        f"{r.test}: p = {format_p(r.p_value)}\n"
        f"protocol: {describe(c.evaluation_a.protocol)}"
    )
    return Group(table, lines)


def describe(protocol: dict) -> str:
    """The shared protocol of a paired comparison, short: attack and its settings, seed, n."""
    attack = protocol.get("attack") or {"name": "clean"}
    if not isinstance(attack, dict):
        attack = {"name": str(attack)}
    settings = ", ".join(f"{k}={_short(v)}" for k, v in sorted(attack.items()) if k != "name")
    precision = "bf16" if "bfloat16" in str(protocol.get("amp")) else "fp32"
    return (
        f"{attack.get('name')}({settings}), seed {protocol.get('seed')}, n {protocol.get('n')}, "
        f"{precision}, data {str(protocol.get('data'))[:12]}"
    )


def _short(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def format_p(p: float) -> str:
    """A p-value for people: 3 significant digits, '< 1e-6' below that."""
    if p != p:  # nan
        return "-"
    return "< 1e-6" if p < 1e-6 else f"{p:.3g}"
