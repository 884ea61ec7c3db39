"""What moved between two leaderboards: matched by key, compared against a tolerance.

A CI job fails on a regression only if this is exact about what counts: a metric that moved
by more than `tol` (percentage points for accuracies) or a row that disappeared. Rows match
on the board's key less the model's identity (`match_key`), unless a board holds two models
under one name. Rows that
appear are reported but are not failures: adding a run is not a regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from rich.table import Table

from robench.leaderboard.render import plain
from robench.leaderboard.schema import BoardSchema, schema_for
from robench.leaderboard.store import LeaderboardError, read_board, read_raw
from robench.leaderboard.stored_flags import row_flags
from robench.stats import paired_comparison, two_proportion_test


@dataclass(frozen=True)
class Change:
    key: tuple[str, ...]
    metric: str
    old: float | None
    new: float | None
    test: str = ""  # with --significance: the test of this change ("" for none)
    p: float = math.nan

    @property
    def delta(self) -> float:
        if self.old is None or self.new is None:
            return math.inf
        return self.new - self.old


@dataclass(frozen=True)
class BoardDiff:
    schema: BoardSchema
    key: tuple[str, ...]
    tol: float
    changes: tuple[Change, ...]  # every metric that differs at all
    appeared: tuple[tuple[str, ...], ...]
    disappeared: tuple[tuple[str, ...], ...]
    unchanged_rows: int
    alpha: float | None = None  # --significance: a change must also be significant at alpha

    def counts(self, change: Change) -> bool:
        """Whether a change is a regression: beyond the tolerance and, with --significance,
        significant (a change no test applies to, such as epochs, needs the tolerance only)."""
        if abs(change.delta) <= self.tol:
            return False
        if self.alpha is None or not change.test or math.isinf(change.delta):
            return True
        return change.p < self.alpha

    @property
    def beyond_tolerance(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if self.counts(c))

    @property
    def ok(self) -> bool:
        return not self.beyond_tolerance and not self.disappeared


def diff_boards(
    base: Path,
    new: Path,
    tol: float = 0.5,
    key: tuple[str, ...] | None = None,
    significance: float | None = None,
) -> BoardDiff:
    """Compare two versions of a board; `significance` (alpha) also tests every changed
    percentage: paired on stored flags when both rows point at them, else from the counts."""
    if not (math.isfinite(tol) and tol >= 0):
        raise LeaderboardError(f"--tol must be a finite number >= 0, got {tol}")
    if significance is not None and not 0 < significance < 1:
        raise LeaderboardError(f"--alpha must be in (0, 1), got {significance}")
    schema = schema_for(base, read_raw(base))
    if schema is None:
        raise LeaderboardError(f"{base} is not a robench leaderboard (no known schema fits)")
    other = schema_for(new, read_raw(new))
    if other is not None and other.name != schema.name:
        raise LeaderboardError(
            f"{base} is a {schema.name} board and {new} a {other.name} board: diff compares "
            "two versions of one board"
        )
    old_board, new_board = read_board(base, schema), read_board(new, schema)
    key = tuple(key) if key else _default_key(schema, old_board, new_board)
    for board, path in ((old_board, base), (new_board, new)):
        unknown = [k for k in key if k not in board.columns]
        if unknown:
            raise LeaderboardError(f"{path}: key column(s) {unknown} not in the file")
        if board.duplicated(list(key)).any():
            raise LeaderboardError(f"{path}: several rows share a key {key}; pass a finer --key")
    old_rows, new_rows = _by_key(old_board, key), _by_key(new_board, key)
    changes: list[Change] = []
    unchanged = 0
    for k in sorted(set(old_rows) & set(new_rows)):
        row_changes = [
            Change(k, m, _num(old_rows[k][m]), _num(new_rows[k][m]))
            for m in schema.metrics
            if not _same(old_rows[k][m], new_rows[k][m])
        ]
        if significance is not None:
            row_changes = [
                _tested(c, old_rows[k], new_rows[k]) if c.metric in schema.percent else c
                for c in row_changes
            ]
        changes += row_changes
        unchanged += not row_changes
    return BoardDiff(
        schema=schema,
        key=key,
        tol=tol,
        changes=tuple(changes),
        appeared=tuple(sorted(set(new_rows) - set(old_rows))),
        disappeared=tuple(sorted(set(old_rows) - set(new_rows))),
        unchanged_rows=unchanged,
        alpha=significance,
    )


def _tested(change: Change, old: pd.Series, new: pd.Series) -> Change:
    """The change with its test: exact McNemar on both rows' stored flags when they cover the
    same images, Fisher's exact test on the counts otherwise."""
    if change.old is None or change.new is None:
        return change
    old_flags, new_flags = row_flags(old, change.metric), row_flags(new, change.metric)
    if old_flags is not None and new_flags is not None and len(old_flags) == len(new_flags):
        paired = paired_comparison(new_flags, old_flags)
        return replace(change, test=paired.test, p=paired.p_value)
    n_old, n_new = _num(old.get("n_eval")), _num(new.get("n_eval"))
    if not n_old or not n_new:
        return change
    test = two_proportion_test(change.new, int(n_new), change.old, int(n_old))
    return replace(change, test=test.test, p=test.p_value)


def _default_key(schema: BoardSchema, *boards: pd.DataFrame) -> tuple[str, ...]:
    """Rows match by name and protocol (two machines' reproductions give their runs other
    identities), or by the full key, identity included, where one board holds several models
    under one name."""
    match = list(schema.match_key)
    if all(not board.duplicated(match).any() for board in boards):
        return schema.match_key
    return schema.key


def shown_key(diff: BoardDiff) -> tuple[int, ...]:
    """Positions of the key columns that tell the listed rows apart (all the same: the first).

    A pgd20 key has eleven columns; printing the ones every listed row shares would push the
    numbers off an 80-column terminal without telling the reader anything.
    """
    keys = [c.key for c in diff.changes] + list(diff.appeared) + list(diff.disappeared)
    varying = tuple(i for i in range(len(diff.key)) if len({k[i] for k in keys}) > 1)
    return varying or (0,)


def diff_tables(diff: BoardDiff) -> list[Table]:
    """Rich tables: changed metrics (beyond tolerance in red), appeared and disappeared rows."""
    shown = shown_key(diff)
    names = [diff.key[i] for i in shown]
    tables = []
    if diff.changes:
        tested = diff.alpha is not None
        title = f"changed (tolerance {diff.tol:g}" + (f", alpha {diff.alpha:g})" if tested else ")")
        table = Table(title=title, header_style="bold")
        extra = ("p", "test") if tested else ()
        for name in (*names, "metric", "old", "new", "delta", *extra):
            table.add_column(
                name, justify="right" if name in ("old", "new", "delta", "p") else "left"
            )
        for c in diff.changes:
            style = "red" if diff.counts(c) else None
            key = [plain(c.key[i]) for i in shown]
            cells = (_fmt_p(c), c.test or "none") if tested else ()
            table.add_row(
                *key, c.metric, _fmt(c.old), _fmt(c.new), _fmt_delta(c), *cells, style=style
            )
        tables.append(table)
    for title, keys, style in (
        ("appeared", diff.appeared, "green"),
        ("disappeared", diff.disappeared, "red"),
    ):
        if keys:
            table = Table(title=title, header_style="bold")
            for name in names:
                table.add_column(plain(name))
            for k in keys:
                table.add_row(*(plain(k[i]) for i in shown), style=style)
            tables.append(table)
    return tables


def diff_markdown(diff: BoardDiff) -> str:
    """The same as markdown, for a CI log or a pull-request comment."""
    lines = [f"### leaderboard diff ({diff.schema.name}): {summary(diff)}", ""]
    if diff.changes:
        tested = diff.alpha is not None
        extra = ("test", "p") if tested else ()
        lines += [
            "| " + " | ".join((*diff.key, "metric", "old", "new", "delta", *extra, "")) + " |",
            "|" + "---|" * (len(diff.key) + 5 + len(extra)),
        ]
        for c in diff.changes:
            flag = "**beyond tolerance**" if diff.counts(c) else ""
            if tested and abs(c.delta) > diff.tol:
                flag = "**significant**" if diff.counts(c) else "beyond tolerance, not significant"
            tests = (c.test or "none", _fmt_p(c)) if tested else ()
            cells = (*c.key, c.metric, _fmt(c.old), _fmt(c.new), _fmt_delta(c), *tests, flag)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    for title, keys in (("appeared", diff.appeared), ("disappeared", diff.disappeared)):
        if keys:
            lines += [f"**{title}:**", ""] + [f"- {', '.join(k)}" for k in keys] + [""]
    return "\n".join(lines).rstrip() + "\n"


def summary(diff: BoardDiff) -> str:
    verdict = "OK" if diff.ok else "FAIL"
    beyond = f"beyond ±{diff.tol:g}"
    if diff.alpha is not None:
        beyond += f" and significant at alpha {diff.alpha:g}"
    return (
        f"{verdict}: {len(diff.beyond_tolerance)} metric(s) {beyond}, "
        f"{len(diff.changes) - len(diff.beyond_tolerance)} within, {len(diff.appeared)} "
        f"row(s) appeared, {len(diff.disappeared)} disappeared, {diff.unchanged_rows} unchanged"
    )


def _by_key(board: pd.DataFrame, key: tuple[str, ...]) -> dict[tuple[str, ...], pd.Series]:
    return {tuple(str(row[k]) for k in key): row for _, row in board.iterrows()}


def _num(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _same(a: object, b: object) -> bool:
    na, nb = _num(a), _num(b)
    return (na is None and nb is None) or (na is not None and nb is not None and na == nb)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fmt_p(change: Change) -> str:
    if math.isnan(change.p):
        return "-"
    return "< 1e-6" if change.p < 1e-6 else f"{change.p:.3g}"


def _fmt_delta(change: Change) -> str:
    return "n/a" if math.isinf(change.delta) else f"{change.delta:+.2f}"
