"""Which rows of a reproduction's boards each claim of the paper compares.

The cells come from `table3.csv` (which run is which (pretext, scenario) cell), Tables 5 and 6
(`table5.csv`, `table6.csv`), and `autoattack.csv`; the numbers and the per-example flags
from the pgd20 rows of those runs (`pgd20.csv`, the best_ta checkpoint), the two sides of a
comparison taken at the most images both were evaluated on under one protocol. A comparison
whose rows are missing keeps its place in the table with no sides: "not run".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robench.leaderboard.headline import at_paper_eps, preference
from robench.leaderboard.store import read_board
from robench.leaderboard.stored_flags import row_flags

PRETEXTS = ("selfie", "rotation", "jigsaw")  # the paper's
SAME_IMAGES = ("n_eval", "attack", "eps", "steps", "restarts", "seed", "dataset", "precision")
TABLE5_SINGLE = ("selfie_pretraining", "rotation_pretraining", "jigsaw_pretraining")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a model's metric (in %) on n images, and its flags."""

    name: str
    value: float
    n: int
    flags: np.ndarray | None
    paper: float | None = None


@dataclass(frozen=True)
class ClaimRow:
    """One comparison of a claim: its two sides (None: not run) and how it is judged."""

    claim: str  # a .. g
    comparison: str
    metric: str
    a: Side | None
    b: Side | None
    # directional: A beats B; equivalence: A - B stays under the margin; sign: directional,
    # with its numbers and test (across pretexts) given in `cells`
    kind: str = "directional"
    cells: dict[str, Any] = field(default_factory=dict)


class ClaimSources:
    """A reproduction's boards (`DIR/leaderboards/` or the folder itself), read once."""

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        self.folder = folder / "leaderboards" if (folder / "leaderboards").is_dir() else folder
        self.boards = {
            name: read_board(self.folder / f"{name}.csv")
            for name in ("pgd20", "table3", "table5", "table6", "autoattack")
            if (self.folder / f"{name}.csv").is_file()
        }

    def comparisons(self) -> list[ClaimRow]:
        """Every claim's comparisons, in the order of the claims (a) to (g)."""
        return [
            *self._cells("a", "RA", ("P3F4", "P1F4")),
            self._epochs(),
            *(
                row
                for pair in (("P3F4", "P3F2"), ("P3F4", "P3F3"))
                for row in self._cells("c", "RA", pair)
            ),
            *self._ensembles(),
            *self._table5(),
            *self._autoattack(),
            *self._cells("g", "RA", ("P2F3", "P1F3"), kind="equivalence"),
        ]

    # -- the claims ------------------------------------------------------------------------

    def _cells(
        self, claim: str, metric: str, pair: tuple[str, str], kind: str = "directional"
    ) -> Iterator[ClaimRow]:
        for pretext in PRETEXTS:
            a_run, b_run = (self._cell(pretext, s) for s in pair)
            a, b, note = self._pair(a_run, b_run, self._cell_paper(pretext, pair))
            comparison = f"{pretext}: {pair[0]} vs {pair[1]}"
            yield ClaimRow(claim, comparison, metric, a, b, kind, cells=note)

    def _epochs(self) -> ClaimRow:
        """(b): fewer epochs to the selected model, pretext by pretext; a sign test across."""
        from scipy.stats import binomtest

        pairs, papers = [], []
        for pretext in PRETEXTS:
            a, b = (self._table3_row(pretext, s) for s in ("P3F4", "P1F4"))
            if a is None or b is None:
                continue
            epochs_a, epochs_b = _num(a.get("epochs_to_best")), _num(b.get("epochs_to_best"))
            if epochs_a is None or epochs_b is None:  # a cell without its epoch: not compared
                continue
            pairs.append((pretext, int(epochs_a), int(epochs_b)))
            papers.append((_num(a.get("epochs_paper")), _num(b.get("epochs_paper"))))
        if not pairs:
            return ClaimRow("b", "P3F4 vs P1F4, per pretext", "epochs", None, None, "sign")
        fewer = sum(x < y for _, x, y in pairs)
        more = sum(x > y for _, x, y in pairs)
        p = float(binomtest(fewer, fewer + more, 0.5).pvalue) if fewer + more else 1.0
        mean = (float(np.mean([x for _, x, _ in pairs])), float(np.mean([y for *_, y in pairs])))
        per = ", ".join(f"{t} {x} vs {y}" for t, x, y in pairs)
        cells = {
            "value_a": mean[0],
            "value_b": mean[1],
            "n": len(pairs),
            "diff": mean[1] - mean[0],  # > 0: P3F4 took fewer epochs
            "test": "sign test across pretexts (two-sided; one training seed per run)",
            "discordant": f"{fewer}/{more}",
            "p": p,
            "note": f"epochs P3F4 vs P1F4: {per}; diff = P1F4 - P3F4",
        }
        paper = [_mean([p[i] for p in papers]) for i in (0, 1)]
        a = Side("P3F4", mean[0], len(pairs), None, paper[0])
        b = Side("P1F4", mean[1], len(pairs), None, paper[1])
        return ClaimRow("b", "P3F4 vs P1F4, per pretext", "epochs", a, b, "sign", cells)

    def _ensembles(self) -> Iterator[ClaimRow]:
        table6 = self.boards.get("table6")
        rows = (
            []
            if table6 is None
            else [r for _, r in table6.iterrows() if str(r["members"]).count("+") >= 2]
        )
        if not rows:
            yield ClaimRow("d", "3-model ensemble vs its best member", "RA", None, None)
        for row in rows:
            members = str(row["members"]).split("+")
            best = max(members, key=lambda m: self._ra(m))
            a, b, note = self._pair(str(row["row"]), best, (_num(row.get("ra_paper")), None))
            yield ClaimRow("d", f"{row['row']} vs its best member {best}", "RA", a, b, cells=note)

    def _table5(self) -> Iterator[ClaimRow]:
        table5 = self.boards.get("table5")
        runs = {} if table5 is None else {str(r["row"]): r for _, r in table5.iterrows()}
        pairs = [("ap_dpe", "ap_se"), *(("ap_se", single) for single in TABLE5_SINGLE)]
        for first, second in pairs:
            rows = [runs.get(first), runs.get(second)]
            names = [None if r is None else str(r["run"]) for r in rows]
            paper = tuple(None if r is None else _num(r.get("ra_paper")) for r in rows)
            a, b, note = self._pair(names[0], names[1], paper)
            yield ClaimRow("e", f"{first} vs {second}", "RA", a, b, cells=note)

    def _autoattack(self) -> Iterator[ClaimRow]:
        board = self.boards.get("autoattack")
        if board is None or board.empty:
            yield ClaimRow("f", "PGD-20 vs AutoAttack", "RA", None, None)
            return
        for _, row in board.iterrows():
            n = int(row["n_eval"])
            a = Side(f"{row['run']} PGD-20", float(row["pgd20_ra"]), n, row_flags(row, "pgd20_ra"))
            b = Side(f"{row['run']} AutoAttack", float(row["aa_ra"]), n, row_flags(row, "aa_ra"))
            yield ClaimRow("f", f"{row['run']}: PGD-20 vs AutoAttack", "RA", a, b)

    # -- rows and sides -------------------------------------------------------------------

    def _table3_row(self, pretext: str, scenario: str) -> pd.Series | None:
        table3 = self.boards.get("table3")
        if table3 is None:
            return None
        hit = table3[(table3["pretext"] == pretext) & (table3["scenario"] == scenario)]
        return None if hit.empty else hit.iloc[0]

    def _cell(self, pretext: str, scenario: str) -> str | None:
        row = self._table3_row(pretext, scenario)
        return None if row is None else str(row["run"])

    def _cell_paper(self, pretext: str, pair: tuple[str, str]) -> tuple[float | None, ...]:
        rows = (self._table3_row(pretext, s) for s in pair)
        return tuple(None if r is None else _num(r.get("ra_paper")) for r in rows)

    def _pgd20_rows(self, run: str | None) -> pd.DataFrame:
        board = self.boards.get("pgd20")
        if board is None or run is None:
            return pd.DataFrame()
        rows = board[(board["run"] == run) & (board["checkpoint"].fillna("best_ta") == "best_ta")]
        return at_paper_eps(rows)  # not a row of an eps sweep (eps 0 has RA = TA)

    def _ra(self, run: str) -> float:
        rows = self._pgd20_rows(run)
        return -math.inf if rows.empty else float(rows.sort_values("n_eval")["ra"].iloc[-1])

    def _pair(
        self, a_run: str | None, b_run: str | None, paper: tuple[float | None, ...]
    ) -> tuple[Side | None, Side | None, dict[str, Any]]:
        """Both runs' pgd20 rows under one shared protocol: of the pairs on the same images,
        the one headline.py's order prefers (both sides' own protocol, fp32, most images)."""
        a_rows, b_rows = self._pgd20_rows(a_run), self._pgd20_rows(b_run)
        if a_rows.empty or b_rows.empty:
            missing = [r or "-" for r, rows in ((a_run, a_rows), (b_run, b_rows)) if rows.empty]
            return None, None, {"note": f"no pgd20 row for {', '.join(missing)}"}
        common = [
            (x, y)
            for _, x in a_rows.iterrows()
            for _, y in b_rows.iterrows()
            if all(str(x.get(c)) == str(y.get(c)) for c in SAME_IMAGES if c in x.index)
        ]
        if not common:
            return None, None, {"note": "not evaluated on the same images and protocol"}
        # as headline.py orders a run's rows: its own protocol, fp32, the most images (never
        # the file's order)
        sides = [preference(pd.DataFrame([p[k] for p in common]).reset_index(drop=True))
                 for k in (0, 1)]  # fmt: skip

        def rank(i: int) -> tuple[bool, bool, int]:
            plain = all(bool(side.at[i, "plain"]) for side in sides)
            fp32 = all(bool(side.at[i, "fp32"]) for side in sides)
            return plain, fp32, int(common[i][0]["n_eval"])

        x, y = common[max(range(len(common)), key=rank)]
        return _side(x, paper[0]), _side(y, paper[1]), {}


def _members(row: pd.Series) -> int:
    return len(str(row.get("members") or "").split("+"))


def _side(row: pd.Series, paper: float | None) -> Side:
    return Side(str(row["run"]), float(row["ra"]), int(row["n_eval"]), row_flags(row, "ra"), paper)


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known and len(known) == len(values) else None


def _num(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
