"""`robench report DIR`: the HTML report again, from what a folder holds.

DIR is a reproduction's output folder (leaderboards/, runs/, transfer/, claims.csv) or any
folder of boards (and, optionally, run directories beside them). Every figure is drawn again
from the CSVs and metrics logs found there, so the page can be rebuilt after more
evaluations, on another machine, or from boards someone sent; nothing is evaluated.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from robench.atomic import write_text_atomic
from robench.errors import RobenchError

# Boards shown as tables, in this order (the long boards are figures and CSVs, not tables)
SHOWN = ("pgd20", "table3", "table5", "table6", "table7", "table8", "figure3", "autoattack",
         "corruptions", "unforeseen")  # fmt: skip
MAX_CURVES = 12  # training curves of at most this many runs, or the legend is unreadable


def _boards_folder(folder: Path) -> Path:
    inner = folder / "leaderboards"
    return inner if inner.is_dir() else folder


def read_boards(folder: Path) -> dict[str, pd.DataFrame]:
    boards_dir = _boards_folder(folder)
    out = {}
    for name in SHOWN:
        path = boards_dir / f"{name}.csv"
        if path.is_file():
            out[name] = pd.read_csv(path)
    claims = folder / "claims.csv"
    if claims.is_file():
        out["claims"] = pd.read_csv(claims)
    return out


def _run_dirs(folder: Path, boards: dict[str, pd.DataFrame]) -> list[Path]:
    """Run directories with a metrics log: those of the pgd20 board's runs first."""
    runs = folder / "runs"
    found = sorted(p.parent for p in runs.glob("*/metrics.jsonl")) if runs.is_dir() else []
    named = set(boards["pgd20"]["run"].astype(str)) if "pgd20" in boards else set()
    found.sort(key=lambda p: (p.name not in named, p.name))
    return found[:MAX_CURVES]


def draw_figures(folder: Path, boards: dict[str, pd.DataFrame], figures: Path) -> list[Path]:
    from robench.eval.suites.unforeseen import COLUMNS as UNFORESEEN
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
        default = pgd[pgd["eps_value"].round(9) == round(8 / 255, 9)] if "eps_value" in pgd else pgd
        drawn.append(plot_ta_ra(default if len(default) else pgd, figures / "ta_ra.png"))
        swept = pgd.groupby("run")["eps_value"].nunique() if "eps_value" in pgd else pd.Series()
        if len(swept) and swept.max() >= 3:
            rows = pgd[pgd["run"].isin(set(swept[swept >= 3].index))]
            rows = sweep_rows(rows, sorted(rows["eps_value"].astype(float).unique()))
            drawn.append(plot_eps_sweep(rows, figures / "pgd20-eps-sweep.png"))
    if "unforeseen" in boards and len(boards["unforeseen"]):
        drawn.append(plot_unforeseen(boards["unforeseen"], list(UNFORESEEN),
                                     figures / "unforeseen.png"))  # fmt: skip
    long = _boards_folder(folder) / "corruptions_long.csv"
    if long.is_file():
        drawn.append(plot_corruptions(pd.read_csv(long), figures / "corruptions.png"))
    preview = folder / "figures" / "corruptions_preview.png"  # made by reproduce (needs data)
    if preview.is_file():
        drawn.append(preview)
    runs = _run_dirs(folder, boards)
    if runs:
        drawn.append(plot_training_curves(runs, figures / "training_curves.png"))
    transfer = folder / "transfer"
    if (transfer / "transfer_asr.csv").is_file():
        asr = pd.read_csv(transfer / "transfer_asr.csv", index_col="evaluated")
        drawn.append(plot_asr_heatmap(asr, figures / "transfer_asr.png"))
    if (transfer / "transfer_overlap.csv").is_file():
        overlap = pd.read_csv(transfer / "transfer_overlap.csv")
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
    figures = draw_figures(folder, boards, out.parent / "figures")
    write_text_atomic(out, report_html(f"robench report {folder.resolve().name}", boards, figures))
    return out, figures
