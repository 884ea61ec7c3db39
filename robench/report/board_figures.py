"""Figures a reader takes in at a glance, one per kind of board (issue #16):

- the unforeseen attacks per run, as grouped bars with their 95% intervals;
- corruption accuracy: corruption x severity as a heat map for the best run, and every run's
  mean over corruptions against severity;
- training curves per run, from metrics.jsonl: the training loss, and validation TA and RA.

Each has a pure function that shapes the data (tested for its numbers) and a plot function
that draws it with figures.py's conventions (Agg, atomic PNG, text never mathtext).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from robench.report.figures import literal, new_figure, save_figure
from robench.runs.metrics_log import read_metrics


def unforeseen_matrix(board: pd.DataFrame, attacks: list[str]) -> pd.DataFrame:
    """Runs x attacks of accuracy (%) from a board with one column per attack."""
    present = [a for a in attacks if a in board]
    return board.set_index("run")[present].astype(float)


def plot_unforeseen(board: pd.DataFrame, attacks: list[str], path: Path) -> Path:
    values = unforeseen_matrix(board, attacks)
    runs, names = list(values.index), list(values.columns)
    fig = new_figure(max(6.0, 0.55 * len(names) * max(1, len(runs)) ** 0.5 + 2), 3.8)
    ax = fig.add_subplot()
    width = 0.8 / max(len(runs), 1)
    x = np.arange(len(names))
    for i, run in enumerate(runs):
        row = board[board["run"] == run].iloc[0]
        heights = values.loc[run].to_numpy()
        lo = np.array([float(row.get(f"{a}_lo", np.nan)) for a in names])
        hi = np.array([float(row.get(f"{a}_hi", np.nan)) for a in names])
        errors = np.nan_to_num(np.vstack([heights - lo, hi - heights]).clip(min=0))
        ax.bar(x + (i - (len(runs) - 1) / 2) * width, heights, width, yerr=errors,
               capsize=2, label=literal(run))  # fmt: skip
    ax.set_xticks(x, [literal(n) for n in names], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("accuracy under attack (%), 95% interval")
    ax.set_ylim(0, 100)
    ax.set_title("Unforeseen attacks (Figure 3)", fontsize=10)
    ax.legend(fontsize=7, ncols=min(len(runs), 4))
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def corruption_grid(long_board: pd.DataFrame, run: str) -> pd.DataFrame:
    """Corruption x severity accuracy (%) of one run, from the long corruptions board."""
    rows = long_board[long_board["run"] == run]
    return rows.pivot_table(index="corruption", columns="severity", values="accuracy")


def mean_by_severity(long_board: pd.DataFrame) -> pd.DataFrame:
    """Runs x severity: the mean accuracy over corruptions."""
    return long_board.pivot_table(index="run", columns="severity", values="accuracy")


def plot_corruptions(long_board: pd.DataFrame, path: Path) -> Path:
    means = mean_by_severity(long_board)
    best = str(means.mean(axis=1).idxmax())
    grid = corruption_grid(long_board, best)
    fig = new_figure(10.0, 4.6)
    heat, lines = fig.subplots(1, 2, width_ratios=[1.1, 1])
    image = heat.imshow(grid.to_numpy(), vmin=0, vmax=100, cmap="viridis", aspect="auto")
    heat.set_xticks(range(grid.shape[1]), [str(s) for s in grid.columns])
    heat.set_yticks(range(grid.shape[0]), [literal(c) for c in grid.index], fontsize=7)
    heat.set_xlabel("severity")
    heat.set_title(literal(f"{best}: accuracy (%) per corruption"), fontsize=10)
    for (i, j), value in np.ndenumerate(grid.to_numpy()):
        heat.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6,
                  color="white" if value < 50 else "black")  # fmt: skip
    fig.colorbar(image, ax=heat, shrink=0.8)
    for run, row in means.iterrows():
        lines.plot(row.index.astype(int), row.to_numpy(), marker="o", label=literal(run))
    lines.set_xlabel("severity")
    lines.set_ylabel("mean accuracy over corruptions (%)")
    lines.set_ylim(0, 100)
    lines.set_xticks(sorted(means.columns.astype(int)))
    lines.grid(alpha=0.3)
    lines.legend(fontsize=7)
    return save_figure(fig, path)


def training_history(run_dir: Path) -> pd.DataFrame:
    """A run's metrics.jsonl as a frame, one row per epoch (empty for a run not started, or
    for a log without a training loss per epoch: a pretraining's, or not robench's)."""
    history = pd.DataFrame(read_metrics(Path(run_dir) / "metrics.jsonl"))
    return history if {"epoch", "train_loss"} <= set(history.columns) else pd.DataFrame()


def _run_color(index: int, runs: int) -> tuple[float, ...] | str:
    """Ten runs: matplotlib's default colours; more: tab20, so no two runs share one."""
    return f"C{index}" if runs <= 10 else colormaps["tab20"](index % 20)


def plot_training_curves(run_dirs: list[Path], path: Path) -> Path:
    """Training loss, and validation TA (solid) and RA (dashed), per epoch and run; one
    legend of runs beside both panels, so no line is hidden under it."""
    fig = new_figure(10.0, 3.8)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for index, run_dir in enumerate(run_dirs):
        history = training_history(run_dir)
        if history.empty:
            continue
        color = _run_color(index, len(run_dirs))
        name = literal(Path(run_dir).name)
        marker = "o" if len(history) <= 20 else None  # a few epochs: show where they are
        epochs = history["epoch"]
        loss_ax.plot(epochs, history["train_loss"], color=color, marker=marker, label=name)
        if "val_ta" in history:
            acc_ax.plot(epochs, history["val_ta"], color=color, marker=marker)
        if "val_ra" in history and history["val_ra"].notna().any():
            acc_ax.plot(epochs, history["val_ra"].astype(float), color=color, marker=marker,
                        linestyle="--")  # fmt: skip
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training loss")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("validation accuracy (%)")
    acc_ax.set_ylim(0, 100)
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        ax.grid(alpha=0.3)
    styles = [Line2D([], [], color="0.4", label="TA"),
              Line2D([], [], color="0.4", linestyle="--", label="RA")]  # fmt: skip
    acc_ax.legend(handles=styles, fontsize=7, loc="upper right")
    handles, labels = loss_ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=7, title="run",
                   title_fontsize=8, ncols=1 if len(handles) <= 14 else 2)  # fmt: skip
    return save_figure(fig, path)
