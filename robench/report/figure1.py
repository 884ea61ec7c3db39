"""The paper's Figure 1: clean accuracy against robust accuracy, one marker per run.

Marker area is epochs to the selected model; error bars are the 95% intervals of TA and RA;
labels are placed where they hide no marker and no other label.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.transforms import Bbox

from robench.leaderboard.headline import one_row_per_run
from robench.report.figures import literal, new_figure, save_figure


def _summary(board: pd.DataFrame) -> str:
    """'pgd-linf, 20 steps, eps 8/255, n=1000, CIFAR-10': the protocol the points share."""

    def values(column: str) -> str:
        if column not in board:
            return ""
        return "/".join(str(v) for v in dict.fromkeys(board[column].dropna()))

    parts = [values("attack")]
    if values("steps"):
        parts.append(f"{values('steps')} steps")
    if values("eps"):
        parts.append(f"eps {values('eps')}")
    if values("n_eval"):
        parts.append(f"n={values('n_eval')}")
    parts.append(values("dataset"))
    return ", ".join(p for p in parts if p)


def _error_bar(board: pd.DataFrame, metric: str) -> np.ndarray:
    """Distances from the value down to its interval's lower end and up to its upper end
    (0 where a row has no interval)."""
    value = board[metric].to_numpy(dtype=float)
    if metric + "_lo" not in board or metric + "_hi" not in board:
        return np.zeros((2, len(board)))
    lo = board[metric + "_lo"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    hi = board[metric + "_hi"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    return np.nan_to_num(np.vstack([value - lo, hi - value]).clip(min=0))


def _size_legend_values(epochs: Iterable[float]) -> list[int]:
    unique = sorted({int(e) for e in epochs})
    if len(unique) <= 3:
        return unique
    return sorted({unique[0], unique[len(unique) // 2], unique[-1]})


def _overlap_area(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def _circle_hits(box: Bbox, center: np.ndarray, radius: float) -> bool:
    nearest = np.clip(center, [box.x0, box.y0], [box.x1, box.y1])
    return float(np.hypot(*(nearest - center))) < radius


ALWAYS_LABELLED = 5  # the summary's best runs: labelled even where every spot collides


def _place_labels(
    ax: Axes, names: list[str], x: np.ndarray, y: np.ndarray, sizes: np.ndarray
) -> int:
    """Label markers at the first spot (right, left, above, ...) that overlaps nothing; the
    number labelled.

    Greedy placement in display space against the markers, the labels already placed and the
    axes frame, best runs (RA, then TA) first. The first ALWAYS_LABELLED take their
    least-overlapping spot where every spot collides; later ones are left unlabelled rather
    than printed over the others (dozens of runs at one point are otherwise unreadable).
    Call after the layout is frozen, so display coordinates no longer move.
    """
    fig = ax.get_figure()
    renderer = fig.canvas.get_renderer()
    centers = ax.transData.transform(np.column_stack([x, y]))
    radii = np.sqrt(sizes) / 2  # marker area is in points squared
    px_per_pt = fig.dpi / 72
    frame = ax.get_window_extent(renderer)
    placed: list[Bbox] = []
    for rank, i in enumerate(np.lexsort((-x, -y))):  # the best runs first
        optional = rank >= ALWAYS_LABELLED
        r = radii[i] + 3
        d = 0.75 * r
        spots = [
            ((r, 0), "left", "center"),
            ((-r, 0), "right", "center"),
            ((0, r), "center", "bottom"),
            ((0, -r), "center", "top"),
            ((d, d), "left", "bottom"),
            ((d, -d), "left", "top"),
            ((-d, d), "right", "bottom"),
            ((-d, -d), "right", "top"),
        ]
        best = None
        for offset, ha, va in spots:
            label = ax.annotate(
                literal(names[i]),
                (x[i], y[i]),
                xytext=offset,
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=9,
                zorder=4,
                # readable over an error bar
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75},
            )
            box = label.get_window_extent(renderer)
            cost = sum(_overlap_area(box, other) for other in placed)
            cost += sum(
                box.width * box.height
                for j in range(len(names))
                if _circle_hits(box, centers[j], radii[j] * px_per_pt)
            )
            cost += box.width * box.height - _overlap_area(box, frame)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, label, box)
            else:
                label.remove()
            if cost == 0:
                break
        assert best is not None
        if optional and best[0] > 0:
            best[1].remove()
            continue
        placed.append(best[2])
    return len(placed)


def one_point_per_run(board: pd.DataFrame, n: int | None = None) -> pd.DataFrame:
    """One row per run (and model): the row that stands for it (robench/leaderboard/
    headline.py: the paper's eps, its own protocol, fp32, the most images), or its row on
    exactly `n` images.

    A board can hold a run evaluated at n = 20 and at n = 1000, or at five eps; drawn side by
    side as several dots with one label they would read as results of equal weight.
    """
    rows = board
    if n is not None:
        rows = rows[rows["n_eval"] == n]
        if rows.empty:
            raise ValueError(f"no row of the board was evaluated on n={n} images")
    return one_row_per_run(rows)


def plot_ta_ra(board: pd.DataFrame, path: Path, n: int | None = None) -> Path:
    """Figure 1: clean accuracy (TA) against robust accuracy (RA), one marker per run.

    Marker area is proportional to epochs_to_best, the paper's measure of how quickly a
    pretrained model converges; the upper-right corner (high TA and high RA) is shaded. Each
    marker has the 95% intervals of TA and RA as error bars. A run is drawn once, from its
    evaluation on the most images (or on `n`), and the title says n.
    """
    if board.empty:
        raise ValueError("the leaderboard has no rows to plot")
    board = one_point_per_run(board, n)
    ta = board["ta"].to_numpy(dtype=float)
    ra = board["ra"].to_numpy(dtype=float)
    names = [str(r) for r in board["run"]]
    epochs = (
        board["epochs_to_best"].fillna(1).clip(lower=1).to_numpy(dtype=float)
        if "epochs_to_best" in board
        else np.ones(len(board))
    )
    scale = 500.0 / epochs.max()
    fig = new_figure(7.4, 5.2)
    ax = fig.add_subplot()
    x_bar, y_bar = _error_bar(board, "ta"), _error_bar(board, "ra")  # zeros without intervals
    x_lo, x_hi = (ta - x_bar[0]).min(), (ta + x_bar[1]).max()
    y_lo, y_hi = (ra - y_bar[0]).min(), (ra + y_bar[1]).max()
    pad_x, pad_y = max((x_hi - x_lo) * 0.12, 2.0), max((y_hi - y_lo) * 0.12, 2.0)
    x0, x1 = x_lo - pad_x, x_hi + pad_x * 1.6  # room for labels on the right
    y0, y1 = y_lo - pad_y, y_hi + pad_y
    gradient = np.add.outer(np.linspace(0, 1, 64), np.linspace(0, 1, 64)) / 2
    ax.imshow(
        np.clip(gradient - 0.5, 0, None) * 2,
        extent=(x0, x1, y0, y1),
        origin="lower",
        cmap="Greens",
        vmin=0,
        vmax=3,
        aspect="auto",
        zorder=0,
    )
    ax.text(
        1.03,
        0.0,
        "green: better\n(higher TA and RA)",
        transform=ax.transAxes,
        va="bottom",
        color="darkgreen",
        fontsize=9,
    )
    sizes = epochs * scale
    if {"ta_lo", "ta_hi", "ra_lo", "ra_hi"} <= set(board.columns):
        ax.errorbar(
            ta,
            ra,
            xerr=x_bar,
            yerr=y_bar,
            fmt="none",
            ecolor="0.35",
            elinewidth=1,
            capsize=3,
            zorder=2,
        )
    ax.scatter(ta, ra, s=sizes, c="C0", alpha=0.7, edgecolors="black", zorder=3)
    for value in _size_legend_values(epochs):
        ax.scatter([], [], s=value * scale, c="C0", alpha=0.7, edgecolors="black", label=str(value))
    ax.legend(
        title="epochs to best TA",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        labelspacing=1.6,
        borderpad=1.0,
        frameon=False,
    )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("clean test accuracy TA (%)")
    ax.set_ylabel("robust accuracy RA (%)")
    ax.grid(alpha=0.3, zorder=1)
    bars = "; bars: 95% Wilson intervals" if "ra_lo" in board.columns else ""
    ax.set_title(literal(textwrap.fill(f"TA vs RA ({_summary(board)}{bars})", 70)), fontsize=11)
    fig.canvas.draw()  # settle the constrained layout, then freeze it for label placement
    fig.set_layout_engine("none")
    labelled = _place_labels(ax, names, ta, ra, sizes)
    if labelled < len(names):
        ax.text(1.03, 0.16, f"labels: {labelled} of {len(names)} runs\n(the rest would\n"
                "overlap; all are\nin the table)", transform=ax.transAxes, va="bottom",
                fontsize=8, color="0.35")  # fmt: skip
    return save_figure(fig, path)
