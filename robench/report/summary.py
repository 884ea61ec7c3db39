"""The top of the report: what a reader wants before any table.

The best runs by robust accuracy (with their intervals, so a reader sees which leads are
real), the verdicts on the paper's claims, and every flagged row of every board, each linked
to the section that holds it. Rows flagged as doubtful are never ranked without their mark.
"""

from __future__ import annotations

import html

import pandas as pd

from robench.leaderboard.claims import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN
from robench.leaderboard.headline import at_paper_eps, one_row_per_run
from robench.report.tables import FLAG_MARK, flag_kinds, flag_meaning, is_flagged, row_cell

TOP = 5  # runs in the "best by RA" table
# the claims section's compact table (the statements are in the summary)
CLAIM_COLUMNS = ("claim", "comparison", "A", "B", "A - B [95%]", "p (Holm)", "verdict")
VERDICT_CLASS = {HOLDS: "holds", FAILS: "fails", INCONCLUSIVE: "open", NOT_RUN: "open"}


def best_runs(pgd: pd.DataFrame, top: int = TOP) -> pd.DataFrame:
    """The `top` runs by RA (then TA) at the paper's eps, one row each (the row that stands
    for the run: robench/leaderboard/headline.py); `tied` marks each row whose RA interval
    reaches the leader's: the data cannot tell it from the best."""
    rows = at_paper_eps(one_row_per_run(pgd))
    ranked = rows.sort_values(["ra", "ta"], ascending=False, kind="stable")
    ranked = ranked.head(top).reset_index(drop=True)
    if len(ranked) and {"ra_lo", "ra_hi"} <= set(ranked.columns):
        lo = pd.to_numeric(ranked["ra_lo"], errors="coerce")
        hi = pd.to_numeric(ranked["ra_hi"], errors="coerce")
        ranked["tied"] = [i > 0 and bool(h >= lo.iloc[0]) for i, h in enumerate(hi)]
    return ranked


def _best_html(pgd: pd.DataFrame) -> str:
    ranked = best_runs(pgd)
    if not len(ranked):
        return ""
    rows = []
    for rank, (_, row) in enumerate(ranked.iterrows(), start=1):
        name = (f"{FLAG_MARK} " if is_flagged(row) else "") + str(row["run"])
        tied = " (interval overlaps #1)" if row.get("tied") is True else ""
        cells = [str(rank), name, str(row.get("scenario", "")), row_cell(row, "ta"),
                 row_cell(row, "ra") + tied]  # fmt: skip
        tag = '<tr class="flagged">' if is_flagged(row) else "<tr>"
        rows.append(tag + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    first = ranked.iloc[0]
    protocol = ", ".join(
        f"{k} {first[k]}" for k in ("attack", "eps", "steps", "n_eval") if k in ranked
    )
    if "eps" in pgd and pgd["eps"].nunique() > 1:
        protocol += " (the other eps of the sweep are in pgd20)"
    head = "".join(f"<th>{h}</th>" for h in ("#", "run", "scenario", "TA %", "RA %"))
    return (
        f'<h3>Best runs by robust accuracy</h3><p class="caption">{html.escape(protocol)}; '
        "95% Wilson intervals. A run whose RA interval reaches the leader's is not shown to "
        'be worse.</p><table class="summary"><thead><tr>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def claim_tally(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: its statement and how its comparisons came out ('3 inconclusive')."""
    rows = []
    for claim, group in claims.groupby("claim", sort=True):
        counts = group["verdict"].value_counts()
        verdicts = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
        rows.append({"claim": claim, "statement": group["statement"].iloc[0],
                     "verdicts": verdicts, "overall": _overall(set(counts.index))})  # fmt: skip
    return pd.DataFrame(rows, columns=["claim", "statement", "verdicts", "overall"])


def _overall(verdicts: set[str]) -> str:
    """A claim holds when every comparison that ran holds, fails when any fails."""
    ran = verdicts - {NOT_RUN}
    if not ran:
        return NOT_RUN
    if FAILS in ran:
        return FAILS
    return HOLDS if ran == {HOLDS} else INCONCLUSIVE


def _claims_html(claims: pd.DataFrame) -> str:
    if not len(claims) or not {"claim", "statement", "verdict"} <= set(claims.columns):
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(r.claim)}</td><td>{html.escape(r.statement)}</td>"
        f"<td>{html.escape(r.verdicts)}</td>"
        f'<td class="verdict {VERDICT_CLASS.get(r.overall, "open")}">{html.escape(r.overall)}'
        "</td></tr>"
        for r in claim_tally(claims).itertuples()
    )
    head = "".join(f"<th>{h}</th>" for h in ("", "claim", "comparisons", "overall"))
    return (
        '<h3>The paper\'s claims</h3><p class="caption">Paired exact tests, Holm-corrected; '
        'each comparison is in <a href="#claims">the claims section</a>.</p>'
        f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


def flagged_rows(boards: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per board and kind of flag: the runs it marks, with how many of their rows
    (an eps sweep has several rows per run)."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    for name, board in boards.items():
        if "flags" not in board:
            continue
        for _, row in board.iterrows():
            if is_flagged(row):
                run = str(row.get("run", row.get("row", "?")))
                for kind in flag_kinds(row["flags"]):
                    runs = found.setdefault((name, kind), {})
                    runs[run] = runs.get(run, 0) + 1
    rows = [
        {"board": board, "flag": kind, "meaning": flag_meaning(kind),
         "runs": ", ".join(r if n == 1 else f"{r} ({n} rows)" for r, n in runs.items())}
        for (board, kind), runs in found.items()
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["board", "flag", "meaning", "runs"])


def _flagged_html(boards: dict[str, pd.DataFrame]) -> str:
    flagged = flagged_rows(boards)
    if not len(flagged):
        return '<p class="ok">No row of any board is flagged.</p>'
    items = "".join(
        f'<li><a href="#{html.escape(r.board)}">{html.escape(r.board)}</a>: '
        f"<code>{html.escape(r.flag)}</code> ({html.escape(r.meaning)}): {html.escape(r.runs)}"
        "</li>"
        for r in flagged.itertuples()
    )
    return (
        f'<h3 class="flag-note">{FLAG_MARK} Flagged rows: their numbers are doubtful</h3>'
        f'<ul class="flagged-list">{items}</ul>'
    )


def summary_html(boards: dict[str, pd.DataFrame]) -> str:
    """The summary section; parts whose boards do not exist are left out."""
    parts = []
    if "pgd20" in boards:
        parts.append(_best_html(boards["pgd20"]))
    if "claims" in boards:
        parts.append(_claims_html(boards["claims"]))
    parts.append(_flagged_html(boards))
    body = "".join(p for p in parts if p)
    return f'<section id="summary"><h2>Summary</h2>{body}</section>'
