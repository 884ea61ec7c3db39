"""Accuracy against eps: one line per model from the rows of an eps sweep (`--eps-sweep`).

A sweep's rows share everything but eps (the same images, attack, steps, seed); each point is
the RA at one eps with its 95% interval as a band, and eps 0 (the attack cannot move) is the
clean accuracy. Rows of other protocols in the same board are left out, not mixed in.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from robench.report.figures import literal, new_figure, save_figure

SAME_PROTOCOL = ("attack", "norm", "steps", "restarts", "n_eval", "seed", "dataset", "precision")


def sweep_rows(board: pd.DataFrame, eps: list[float]) -> pd.DataFrame:
    """The rows of `board` at these eps values that share one protocol with the sweep's last
    evaluation (the rows just written), of the models evaluated at two eps or more (a board's
    other runs have a row at the default eps too: they were not swept), by model and eps."""
    rows = board[board["eps_value"].astype(float).round(9).isin([round(e, 9) for e in eps])]
    if rows.empty:
        return rows
    latest = rows.sort_values("date").iloc[-1]
    for column in SAME_PROTOCOL:
        if column in rows:
            rows = rows[rows[column].astype(str) == str(latest[column])]
    swept = rows.groupby("run")["eps_value"].nunique()
    rows = rows[rows["run"].isin(swept[swept >= 2].index)]
    return rows.sort_values(["run", "eps_value"])


def plot_eps_sweep(rows: pd.DataFrame, path: Path, *, metric: str = "ra") -> Path:
    """RA (%) against eps (in /255 for L-inf), a line and its interval band per model."""
    fig = new_figure(5.6, 3.8)
    ax = fig.add_subplot()
    linf = str(rows["norm"].iloc[0]) != "l2" if "norm" in rows and len(rows) else True
    for run, group in rows.groupby("run", sort=True):
        eps = group["eps_value"].astype(float) * (255 if linf else 1)
        value = group[metric].astype(float)
        ax.plot(eps, value, marker="o", label=literal(run))
        if f"{metric}_lo" in group and f"{metric}_hi" in group:
            lo = group[f"{metric}_lo"].astype(float)
            hi = group[f"{metric}_hi"].astype(float)
            ax.fill_between(eps, lo, hi, alpha=0.2)
    ax.set_xlabel("eps (x/255, L-inf)" if linf else "eps (L2)")
    ax.set_ylabel("robust accuracy (%), 95% interval")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if len(rows):
        first = rows.iloc[0]
        protocol = [str(first.get("attack", "")), f"{first.get('steps', '')} steps"]
        protocol += [f"n={first.get('n_eval', '')}", str(first.get("dataset", ""))]
        ax.set_title(literal(", ".join(protocol)), fontsize=9)
    if rows["run"].nunique() <= 6:
        ax.legend(fontsize=8, loc="upper right")
    else:  # beside the axes, where no line runs under it
        fig.legend(fontsize=7, loc="outside right upper")
    return save_figure(fig, path)
