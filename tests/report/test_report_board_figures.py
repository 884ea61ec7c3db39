"""The at-a-glance figures: the numbers they are drawn from, and a real PNG each."""

from __future__ import annotations

import json

import pandas as pd
from PIL import Image

from robench.eval.suites.unforeseen import COLUMNS as ATTACKS
from robench.report.board_figures import (
    corruption_grid,
    mean_by_severity,
    plot_corruptions,
    plot_training_curves,
    plot_unforeseen,
    training_history,
    unforeseen_matrix,
)

CORRUPTIONS = ("fog", "snow", "$jpeg$")


def _png(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_unforeseen_bars_take_every_attack_column(tmp_path):
    rows = []
    for i, run in enumerate(["P1F4", "rotation-P3F4"]):
        row = {"run": run}
        for j, attack in enumerate(ATTACKS):
            row.update({attack: 10.0 * i + j, f"{attack}_lo": 10.0 * i + j - 3,
                        f"{attack}_hi": 10.0 * i + j + 3})  # fmt: skip
        rows.append(row)
    board = pd.DataFrame(rows)
    matrix = unforeseen_matrix(board, list(ATTACKS))
    assert matrix.shape == (2, 12) and matrix.loc["rotation-P3F4", ATTACKS[2]] == 12.0
    assert _png(plot_unforeseen(board, list(ATTACKS), tmp_path / "u.png"))[0] >= 800


def test_corruption_figures_pick_the_best_run_and_average_over_corruptions(tmp_path):
    rows = [
        {"run": run, "corruption": c, "severity": s, "accuracy": base - 10 * s + k}
        for run, base in (("a", 90.0), ("b", 70.0))
        for k, c in enumerate(CORRUPTIONS)
        for s in range(1, 6)
    ]
    long = pd.DataFrame(rows)
    grid = corruption_grid(long, "a")
    assert grid.shape == (3, 5) and grid.loc["snow", 2] == 90 - 20 + 1
    means = mean_by_severity(long)
    assert means.loc["b", 1] == 70 - 10 + 1  # (0 + 1 + 2) / 3 over the corruptions
    assert _png(plot_corruptions(long, tmp_path / "c.png"))[0] >= 1200


def test_training_curves_come_from_metrics_jsonl(tmp_path):
    for name, ra in (("P1F4", 20.0), ("P1F3", None)):
        run = tmp_path / name
        run.mkdir()
        lines = [{"epoch": e, "train_loss": 2.0 / e, "val_ta": 30.0 + e, "val_ra": ra}
                 for e in (1, 2, 3)]  # fmt: skip
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    history = training_history(tmp_path / "P1F4")
    assert list(history["epoch"]) == [1, 2, 3] and history["val_ta"].iloc[-1] == 33.0
    assert training_history(tmp_path / "not-started").empty
    runs = [tmp_path / "P1F4", tmp_path / "P1F3", tmp_path / "not-started"]
    assert _png(plot_training_curves(runs, tmp_path / "t.png"))[0] >= 1200
