"""The paper's claims, judged on a reproduction: holds, does not hold, or inconclusive.

Each claim is a comparison of two boards' rows (robench/leaderboard/claim_rows.py finds them).
An accuracy claim is tested on the same images, pairing the two models' stored per-example
flags (exact McNemar, Newcombe's paired interval); rows without stored flags fall back to
Fisher's exact test on the counts, and say so. The claim about epochs has one number per run
(one training seed), so it is a sign test across the pretexts, which cannot reach p < 0.05
with three of them: it is honestly inconclusive until there are more.

All p-values of the table form one family, corrected with Holm's method at alpha = 0.05. A
directional claim ("A beats B") holds when the corrected test is significant in its direction
and does not hold when it is significant against it; otherwise it is inconclusive, which is
what a small reproduction should mostly say. Claim (g), "P2 adds no robustness under F3", is a
claim of no difference: it does not hold when P2F3 is significantly more robust than P1F3,
and holds when the 95% interval of the difference stays below EQUIVALENCE_MARGIN points.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text

from robench.atomic import atomic_write
from robench.errors import RobenchError
from robench.leaderboard.claim_rows import ClaimRow, ClaimSources
from robench.leaderboard.compare import format_p
from robench.leaderboard.render import plain
from robench.stats import holm, paired_comparison, two_proportion_test
from robench.stats.intervals import estimate, interval_from_percent

ALPHA = 0.05
EQUIVALENCE_MARGIN = 2.0  # points of RA within which (g) "adds no robustness" holds
HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
CORRECTION = f"Holm over every test of the table, alpha = {ALPHA}"

STATEMENTS = {
    "a": "P3F4 beats P1F4 in RA (adversarial pretraining helps adversarial fine-tuning)",
    "b": "P3F4 reaches its selected model in fewer epochs than P1F4",
    "c": "after P3, F4 beats F2 and F3 in RA",
    "d": "the 3-model fine-tuned ensemble beats its best member in RA (Table 6)",
    "e": "AP+DPE beats AP+SE, which beats the single-task P3F4 runs, in RA (Table 5)",
    "f": "AutoAttack's RA is at most PGD-20's (it finds at least as many adversarial examples)",
    "g": "P2 (standard pretraining) adds no robustness under F3 (P2F3 RA - P1F3 RA < "
    f"{EQUIVALENCE_MARGIN:g} points)",
}
COLUMNS = (
    "claim", "statement", "comparison", "metric", "a", "b", "value_a", "value_a_lo",
    "value_a_hi", "value_b", "value_b_lo", "value_b_hi", "n", "diff", "diff_lo", "diff_hi",
    "paper_a", "paper_b", "test", "discordant", "p", "p_holm", "verdict", "note",
)  # fmt: skip


def judge_claims(sources: ClaimSources) -> pd.DataFrame:
    """Every claim's rows, tested, corrected for multiplicity, and given a verdict."""
    rows = [_tested(row) for row in sources.comparisons()]
    testable = [i for i, r in enumerate(rows) if not math.isnan(r.cells.get("p", math.nan))]
    _, adjusted = holm([rows[i].cells["p"] for i in testable], ALPHA)
    for i, p in zip(testable, adjusted, strict=True):
        rows[i] = replace(rows[i], cells={**rows[i].cells, "p_holm": p})
    frame = pd.DataFrame(
        [
            {"claim": r.claim, "statement": STATEMENTS[r.claim], **_with_verdict(r).cells}
            for r in rows
        ]
    )
    for column in COLUMNS:
        if column not in frame:
            frame[column] = None
    return frame[list(COLUMNS)]


def _tested(row: ClaimRow) -> ClaimRow:
    """The row with its numbers and its (uncorrected) test."""
    cells: dict[str, Any] = {
        "comparison": row.comparison,
        "metric": row.metric,
        "a": None if row.a is None else row.a.name,
        "b": None if row.b is None else row.b.name,
        "paper_a": None if row.a is None else row.a.paper,
        "paper_b": None if row.b is None else row.b.paper,
        "p": math.nan,
        **row.cells,
    }
    if row.a is None or row.b is None or row.kind == "sign":
        return replace(row, cells=cells)
    a, b = row.a, row.b
    for side, key in ((a, "value_a"), (b, "value_b")):
        lo, hi = interval_from_percent(side.value, side.n)
        cells.update({key: side.value, f"{key}_lo": lo, f"{key}_hi": hi})
    if a.flags is not None and b.flags is not None and len(a.flags) == len(b.flags):
        paired = paired_comparison(a.flags, b.flags)
        cells.update(
            n=paired.n,
            diff=paired.diff,
            diff_lo=paired.diff_lo,
            diff_hi=paired.diff_hi,
            test=paired.test,
            discordant=f"{paired.only_a}/{paired.only_b}",
            p=paired.p_value,
        )
    else:
        test = two_proportion_test(a.value, a.n, b.value, b.n)
        cells.update(
            n=f"{a.n}/{b.n}" if a.n != b.n else a.n,
            diff=test.diff,
            diff_lo=test.diff_lo,
            diff_hi=test.diff_hi,
            test=test.test,
            p=test.p_value,
        )
        cells["note"] = _join(cells.get("note"), "no stored flags for a paired test")
    return replace(row, cells=cells)


def _with_verdict(row: ClaimRow) -> ClaimRow:
    cells = dict(row.cells)
    p = cells.get("p_holm", math.nan)
    if row.a is None or row.b is None:
        cells["verdict"] = NOT_RUN
        return replace(row, cells=cells)
    significant = not math.isnan(p) and p < ALPHA
    diff = float(cells.get("diff", 0.0))
    if row.kind == "equivalence":
        if significant and diff > 0:
            verdict = FAILS
        elif float(cells["diff_hi"]) < EQUIVALENCE_MARGIN:
            verdict = HOLDS
        else:
            verdict = INCONCLUSIVE
    else:  # directional, by the paired test or (epochs) by the sign test
        verdict = (HOLDS if diff > 0 else FAILS) if significant else INCONCLUSIVE
    cells["verdict"] = verdict
    return replace(row, cells=cells)


def _join(*notes: object) -> str:
    return "; ".join(str(n) for n in notes if isinstance(n, str) and n)


def write_claims(folder: Path, out: Path | None = None) -> tuple[pd.DataFrame, Path]:
    """Judge the claims on a reproduction (DIR or its leaderboards/) and write claims.csv
    (into DIR by default, beside leaderboards/; the file is rewritten as a whole)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RobenchError(f"{folder} is not a directory (give a reproduction's --out folder)")
    sources = ClaimSources(folder)
    if "pgd20" not in sources.boards:
        raise RobenchError(f"{sources.folder} has no pgd20.csv: nothing to judge the claims on")
    frame = judge_claims(sources)
    root = folder if (folder / "leaderboards").is_dir() else folder.parent
    path = Path(out) if out is not None else root / "claims.csv"
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    return frame, path


VERDICT_STYLES = {HOLDS: "green", FAILS: "bold red", INCONCLUSIVE: "yellow", NOT_RUN: "dim"}


def claims_table(frame: pd.DataFrame, title: str) -> Table:
    """The claims as the terminal shows them: one line per comparison that ran, the verdict
    last; the comparisons that did not run are listed under the table (claims.csv and the
    report keep every row, with the paper's numbers)."""
    table = Table(
        title=plain(title),
        header_style="bold",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for header, justify in (
        ("", "left"), ("comparison", "left"), ("A %", "right"), ("B %", "right"),
        ("A - B [95%]", "right"), ("p Holm", "right"), ("verdict", "left"),
    ):  # fmt: skip
        wraps = header == "comparison"
        table.add_column(
            header, justify=justify, no_wrap=not wraps, min_width=10 if wraps else None
        )
    ran = frame[frame["verdict"] != NOT_RUN]
    for _, row in ran.iterrows():
        is_epochs = row["metric"] == "epochs"
        table.add_row(
            plain(row["claim"]),
            plain(row["comparison"]),
            plain(_value(row, "value_a", is_epochs)),
            plain(_value(row, "value_b", is_epochs)),
            plain(_difference(row)),
            plain(format_p(row["p_holm"])),
            Text(str(row["verdict"]), style=VERDICT_STYLES.get(str(row["verdict"]), "")),
        )
    lines = [f"({c}) {STATEMENTS[c]}" for c in dict.fromkeys(frame["claim"])]
    sizes = sorted({_short(v) for v in ran.loc[ran["metric"] != "epochs", "n"].dropna()}, key=len)
    if sizes:
        lines.append(f"test images: n = {', '.join(sizes)}")
    not_run = frame[frame["verdict"] == NOT_RUN]
    for claim, rows in not_run.groupby("claim", sort=False):
        lines.append(f"not run ({claim}): " + ", ".join(rows["comparison"].astype(str)))
    lines.append(
        "RA in %, 95% Wilson intervals; A - B in points, Newcombe's paired interval; exact "
        "McNemar on the same images (Fisher's exact on counts where no flags are stored); "
        f"(b) epochs: sign test across pretexts. {CORRECTION}. Intervals cover the test "
        "images drawn, not the seed-to-seed variance of training."
    )
    table.caption = plain("\n".join(lines))
    return table


def _value(row: pd.Series, key: str, is_epochs: bool) -> str:
    if is_epochs:
        return _short(row[key])
    return estimate(row[key], row.get(f"{key}_lo"), row.get(f"{key}_hi"))


def _difference(row: pd.Series) -> str:
    diff = row.get("diff")
    if diff is None or pd.isna(diff):
        return "-"
    if row.get("diff_lo") is None or pd.isna(row.get("diff_lo")):
        return f"{float(diff):+.1f}"
    return f"{float(diff):+.1f} [{float(row['diff_lo']):.1f}, {float(row['diff_hi']):.1f}]"


def _short(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if not value.is_integer() else str(int(value))
    return str(value)


def claims_for_report(frame: pd.DataFrame) -> pd.DataFrame:
    """The claims table as text cells, as the report shows it: `claim` is the letter, the
    statement its own column (the report states each claim once, above its comparisons)."""
    rows = []
    for _, row in frame.iterrows():
        is_epochs = row["metric"] == "epochs"
        rows.append(
            {
                "claim": f"({row['claim']})",
                "statement": row["statement"],
                "comparison": row["comparison"],
                "A": _value(row, "value_a", is_epochs),
                "B": _value(row, "value_b", is_epochs),
                "A - B [95%]": _difference(row),
                "paper A/B": f"{_short(row['paper_a'])}/{_short(row['paper_b'])}",
                "n": _short(row["n"]),
                "test": _short(row["test"]),
                "p (Holm)": f"{format_p(row['p'])} ({format_p(row['p_holm'])})",
                "verdict": row["verdict"],
            }
        )
    return pd.DataFrame(rows)
