"""`robench report DIR`: the HTML report again, from what a folder holds.

DIR is a reproduction's output folder (leaderboards/, runs/, transfer/, claims.csv) or any
folder of boards (and, optionally, run directories beside them). Every figure is drawn again
from the CSVs and metrics logs found there, so the page can be rebuilt after more
evaluations, on another machine, or from boards someone sent; nothing is evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from robench.atomic import write_text_atomic
from robench.errors import RobenchError

# Boards shown as tables, in this order (the long boards are figures and CSVs, not tables)
SHOWN = ("pgd20", "table3", "table5", "table6", "table7", "table8", "figure3", "autoattack",
         "corruptions", "unforeseen")  # fmt: skip
OVERLAP_COLUMNS = ("source", "target_a", "target_b", "only_a", "only_b", "both", "neither", "n")
MAX_CURVES = 12  # training curves of at most this many runs, or the legend is unreadable


def _boards_folder(folder: Path) -> Path:
    inner = folder / "leaderboards"
    return inner if inner.is_dir() else folder


def read_csv(path: Path, needs: Iterable[str] = (), **options: Any) -> pd.DataFrame:
    """A CSV that is not a board (claims, transfer matrices); a one-line error when it is no
    CSV or lacks a column the page needs."""
    try:
        frame = pd.read_csv(path, **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        raise RobenchError(f"{path} is not a CSV file robench wrote") from None
    missing = [c for c in needs if c not in frame.columns]
    if missing:
        raise RobenchError(f"{path}: missing columns {missing}")
    return frame


def read_boards(folder: Path) -> dict[str, pd.DataFrame]:
    """The folder's boards, each checked against its schema (a one-line error if one is not
    a robench board), and its claims as the page shows them."""
    from robench.leaderboard import read_board
    from robench.leaderboard.claims import COLUMNS as CLAIM_COLUMNS
    from robench.leaderboard.claims import claims_for_report
    from robench.leaderboard.schema import SCHEMAS

    boards_dir = _boards_folder(folder)
    out = {}
    for name in SHOWN:
        path = boards_dir / f"{name}.csv"
        if path.is_file():
            out[name] = read_board(path, SCHEMAS[name])
    claims = folder / "claims.csv"
    if claims.is_file():
        out["claims"] = claims_for_report(read_csv(claims, CLAIM_COLUMNS))
    return out


def raw_downloads(folder: Path) -> list[Path]:
    """The CSVs offered as downloads rather than tables: the long corruption board (one row
    per run, corruption and severity), the claims with their tests, the transfer matrices."""
    found = [_boards_folder(folder) / "corruptions_long.csv", folder / "claims.csv"]
    found += sorted((folder / "transfer").glob("transfer_*.csv"))
    return [p for p in found if p.is_file()]


def _run_dirs(folder: Path, boards: dict[str, pd.DataFrame]) -> list[Path]:
    """Run directories with a metrics log: the end-to-end and (P3, F4) runs first (the paper's
    comparison, as reproduce draws it), then the pgd20 board's other runs, then the rest."""
    runs = folder / "runs"
    found = sorted(p.parent for p in runs.glob("*/metrics.jsonl")) if runs.is_dir() else []
    pgd = boards.get("pgd20", pd.DataFrame(columns=["run", "scenario"]))
    scenario = dict(zip(pgd["run"].astype(str), pgd["scenario"].astype(str), strict=True))
    found.sort(key=lambda p: (p.name not in scenario,
                              scenario.get(p.name) not in ("P1F4", "P3F4"), p.name))  # fmt: skip
    return found[:MAX_CURVES]


def draw_figures(folder: Path, boards: dict[str, pd.DataFrame], figures: Path) -> list[Path]:
    from robench.eval.suites.unforeseen import COLUMNS as UNFORESEEN
    from robench.leaderboard import read_board
    from robench.leaderboard.headline import at_paper_eps
    from robench.leaderboard.schema import CORRUPTIONS_LONG
    from robench.report import plot_asr_heatmap, plot_overlap, plot_ta_ra
    from robench.report.board_figures import (
        plot_corruptions,
        plot_training_curves,
        plot_unforeseen,
    )
    from robench.report.eps_curve import plot_eps_sweep, sweep_rows

    figures.mkdir(parents=True, exist_ok=True)
    drawn = []
    pgd = boards.get("pgd20")
    if pgd is not None and len(pgd):
        drawn.append(plot_ta_ra(at_paper_eps(pgd), figures / "ta_ra.png"))
        swept = pgd.groupby("run")["eps_value"].nunique() if "eps_value" in pgd else pd.Series()
        if len(swept) and swept.max() >= 3:
            rows = pgd[pgd["run"].isin(set(swept[swept >= 3].index))]
            rows = sweep_rows(rows, sorted(rows["eps_value"].astype(float).unique()))
            drawn.append(plot_eps_sweep(rows, figures / "pgd20-eps-sweep.png"))
    # the unforeseen board, else Figure 3's (it has the same 12 columns, one row per model)
    unforeseen = next((boards[b] for b in ("unforeseen", "figure3") if len(boards.get(b, ()))),
                      None)  # fmt: skip
    if unforeseen is not None:
        drawn.append(plot_unforeseen(unforeseen, list(UNFORESEEN), figures / "unforeseen.png"))
    long = _boards_folder(folder) / "corruptions_long.csv"
    if long.is_file():
        frame = read_board(long, CORRUPTIONS_LONG)
        drawn.append(plot_corruptions(frame, figures / "corruptions.png"))
    preview = folder / "figures" / "corruptions_preview.png"  # made by reproduce (needs data)
    if preview.is_file():
        drawn.append(preview)
    runs = _run_dirs(folder, boards)
    if runs:
        drawn.append(plot_training_curves(runs, figures / "training_curves.png"))
    transfer = folder / "transfer"
    if (transfer / "transfer_asr.csv").is_file():
        asr = read_csv(transfer / "transfer_asr.csv", index_col="evaluated")
        drawn.append(plot_asr_heatmap(asr, figures / "transfer_asr.png"))
    if (transfer / "transfer_overlap.csv").is_file():
        overlap = read_csv(transfer / "transfer_overlap.csv", OVERLAP_COLUMNS)
        drawn.append(plot_overlap(overlap, figures / "transfer_overlap.png"))
    return drawn


def rebuild_report(folder: Path, out: Path | None = None) -> tuple[Path, list[Path]]:
    """Write the report of `folder` (default DIR/report.html); (its path, the figures)."""
    from robench.report.page import report_html

    if not folder.is_dir():
        raise RobenchError(f"{folder} is not a folder")
    boards = read_boards(folder)
    if not boards:
        raise RobenchError(f"{folder}: no boards (pgd20.csv, ...) here or in leaderboards/")
    out = out or folder / "report.html"
    title = f"robench report {folder.resolve().name}"
    try:
        figures = draw_figures(folder, boards, out.parent / "figures")
        write_text_atomic(out, report_html(title, boards, figures, raw_downloads(folder)))
    except OSError as exc:  # a read-only folder someone sent, a full disk, /proc
        raise RobenchError(
            f"cannot write the report beside {out} ({exc.strerror or exc}); --out elsewhere"
        ) from None
    return out, figures
