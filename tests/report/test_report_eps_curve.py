"""The eps-sweep curve: only the sweep's own rows, names shown as written, a PNG drawn."""

from __future__ import annotations

import pandas as pd
from matplotlib.text import Text

from robench.report.eps_curve import plot_eps_sweep, sweep_rows
from robench.report.figures import literal


def _row(run, eps, ra, steps=20, date="2026-12-02T10:00:00"):
    return {"run": run, "eps_value": eps, "eps": str(eps), "ra": ra, "ra_lo": ra - 5,
            "ra_hi": ra + 5, "ta": 80.0, "attack": "pgd-linf", "norm": "linf", "steps": steps,
            "restarts": 1, "n_eval": 100, "seed": 0, "dataset": "cifar10", "precision": "fp32",
            "date": date}  # fmt: skip


def test_the_curve_takes_the_sweeps_rows_only_and_draws_them(tmp_path):
    board = pd.DataFrame(
        [_row("a", e, ra) for e, ra in ((0.0, 80.0), (2 / 255, 60.0), (8 / 255, 30.0))]
        + [_row("a", 8 / 255, 55.0, steps=10, date="2026-11-01T00:00:00")]  # another protocol
        + [_row("a", 4 / 255, 45.0)]  # an eps the sweep did not ask for
        + [_row("$b^2$", 0.0, 70.0), _row("$b^2$", 8 / 255, 20.0)]
        + [_row("not-swept", 8 / 255, 25.0)]  # another run's row at the default eps only
    )
    rows = sweep_rows(board, [0.0, 2 / 255, 8 / 255])
    assert list(zip(rows["run"], rows["ra"], strict=True)) == [
        ("$b^2$", 70.0), ("$b^2$", 20.0), ("a", 80.0), ("a", 60.0), ("a", 30.0)
    ]  # fmt: skip
    path = plot_eps_sweep(rows, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_literal_text_is_never_a_formula():
    text = literal("$b^2$ run")
    assert Text(text=text)._preprocess_math(text) == ("$b^2$ run", False)
    assert Text()._preprocess_math("$b^2$")[1] is True  # what it would have been
