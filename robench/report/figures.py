"""PNG figures in the paper's style: Table 4 as a heatmap, Figure 5 (Figure 1: figure1.py).

Figures are built with matplotlib's object API on the Agg canvas, never through pyplot: no
global figure registry that could leak memory in a long process, no display backend to pick
up from the environment, and each figure is freed when the function returns. Every PNG is
written atomically, so a report directory never holds half an image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from robench.atomic import atomic_write

DPI = 150
COLOR_A, COLOR_B = "#1f77b4", "#ff7f0e"


def literal(text: object) -> str:
    """Text that matplotlib shows as written: its mathtext would read `$...$` as a formula
    (a row name like `$x$` is valid text)."""
    return str(text).replace("$", r"\$")


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    finally:
        fig.clear()  # drop the artists now rather than whenever the collector runs
    return path


def _ticklabels(ax: Axes, names: list[str], axis: str) -> None:
    """Tick labels that stay readable: long x labels are slanted instead of overlapping."""
    ticks = range(len(names))
    names = [literal(n) for n in names]
    if axis == "x":
        slant = max((len(n) for n in names), default=0) > 8
        ax.set_xticks(ticks, names, rotation=30 if slant else 0, ha="right" if slant else "center")
    else:
        ax.set_yticks(ticks, names)


def plot_asr_heatmap(asr: pd.DataFrame, path: Path, attack: str = "PGD-20") -> Path:
    """Table 4 as an annotated heatmap of attack success rates (%), diagonal = 1 - RA.

    `asr` has the evaluated model as index and the model the examples were crafted on as
    columns, with fractions in [0, 1] (as `transfer_matrix` and transfer_asr.csv hold them).
    """
    values = asr.to_numpy(dtype=float) * 100
    rows, cols = [str(i) for i in asr.index], [str(c) for c in asr.columns]
    longest = max(len(n) for n in [*rows, *cols])
    fig = new_figure(2.6 + 1.05 * len(cols) + 0.06 * longest, 1.9 + 0.85 * len(rows))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="OrRd", vmin=0, vmax=100)
    size = 10 if max(len(rows), len(cols)) <= 5 else 8
    for (i, j), value in np.ndenumerate(values):
        label = "-" if math.isnan(value) else f"{value:.1f}%"
        color = "white" if value > 60 else "black"
        bold = "bold" if rows[i] == cols[j] else "normal"
        ax.text(j, i, label, ha="center", va="center", color=color, fontsize=size, weight=bold)
        if rows[i] == cols[j]:
            ax.add_patch(
                Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5)
            )
    _ticklabels(ax, cols, "x")
    _ticklabels(ax, rows, "y")
    ax.set_xlabel(f"{attack} examples crafted on")
    ax.set_ylabel("evaluated on")
    ax.set_title("Transfer attack success rate (%)\noutlined diagonal: 1 - RA", fontsize=11)
    fig.colorbar(image, ax=ax, label="attack success rate (%)", shrink=0.9)
    return save_figure(fig, path)


def _overlap_panels(overlap: pd.DataFrame) -> list[pd.Series]:
    """Per source, the pairs of the other models (the pair with the source itself if only 2)."""
    panels = []
    for source in dict.fromkeys(overlap["source"]):
        rows = overlap[overlap["source"] == source]
        others = rows[(rows["target_a"] != source) & (rows["target_b"] != source)]
        chosen = others if len(others) else rows
        panels.extend(row for _, row in chosen.iterrows())
    return panels


def _venn(ax: Axes, row: pd.Series) -> None:
    """Two overlapping circles, regions labelled with their share of all n images."""
    for x, color in ((-0.55, COLOR_A), (0.55, COLOR_B)):
        ax.add_patch(Circle((x, 0), 1.0, facecolor=color, alpha=0.3, edgecolor=color, lw=2))
    for x, value in ((-1.0, row["only_a"]), (0.0, row["both"]), (1.0, row["only_b"])):
        ax.text(x, 0, f"{100 * value:.1f}%", ha="center", va="center", fontsize=11)
    ax.text(0, -1.3, literal(f"fools {row['target_a']}"), color=COLOR_A, ha="center", fontsize=10)
    ax.text(0, -1.6, literal(f"fools {row['target_b']}"), color=COLOR_B, ha="center", fontsize=10)
    ax.text(0, -1.9, f"fools neither: {100 * row['neither']:.1f}%", ha="center", fontsize=9)
    ax.set_title(literal(f"examples crafted on\n{row['source']}"), fontsize=11)
    ax.set_xlim(-1.8, 1.8)
    ax.set_ylim(-2.05, 1.15)
    ax.set_aspect("equal")
    ax.axis("off")


def plot_overlap(overlap: pd.DataFrame, path: Path, attack: str = "PGD-20") -> Path:
    """Figure 5: for each source, how its examples that fool one model also fool the other.

    `overlap` is `transfer_matrix(...).overlap` (or transfer_overlap.csv): percentages are of
    all n test images, so only a + both is ASR(source -> a).
    """
    panels = [] if overlap.empty else _overlap_panels(overlap)
    if not panels:
        raise ValueError("the overlap table is empty; it needs at least two models")
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure(3.3 * ncols, 3.5 * nrows + 0.4)
    for k, row in enumerate(panels):
        _venn(fig.add_subplot(nrows, ncols, k + 1), row)
    of_n = f"n={int(overlap['n'].iloc[0])}" if "n" in overlap else "all"
    fig.suptitle(f"Overlap of transferred {attack} examples (% of {of_n} test images)")
    return save_figure(fig, path)
