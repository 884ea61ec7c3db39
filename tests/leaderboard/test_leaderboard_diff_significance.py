"""`leaderboard diff --significance`: beyond --tol is a regression only if it is significant."""

from __future__ import annotations

import numpy as np
from helpers import assert_one_line_error, leaderboard_row, run_cli, stored_pgd_row
from scipy.stats import fisher_exact
from statsmodels.stats.contingency_tables import mcnemar

from robench.leaderboard import upsert_rows
from robench.leaderboard.diff import diff_boards

N = 200


def boards(tmp_path, old: np.ndarray, new: np.ndarray):
    """Two versions of a pgd20 board holding run `a`, each row pointing at its own flags."""
    paths = []
    for version, robust in (("old", old), ("new", new)):
        row = stored_pgd_row(tmp_path / version / "flags", "a", robust)
        path = tmp_path / version / "pgd20.csv"
        upsert_rows(path, [row])
        paths.append(path)
    return paths


def test_a_small_move_on_stored_flags_is_not_significant(monkeypatch, capsys, tmp_path):
    old = np.random.default_rng(0).random(N) < 0.4
    new = old.copy()
    new[np.flatnonzero(~old)[:3]] = True  # +1.5 points: beyond --tol 0.5, 3 discordant pairs
    base, moved = boards(tmp_path, old, new)
    args = ("leaderboard", "diff", str(base), str(moved), "--format", "md")
    code, _, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 1  # the tolerance alone fails it
    code, out, _ = run_cli(monkeypatch, capsys, *args, "--significance")
    assert code == 0, out
    assert "exact McNemar" in out and "beyond tolerance, not significant" in out
    diff = diff_boards(base, moved, significance=0.05)
    change = next(c for c in diff.changes if c.metric == "ra")
    assert change.p == mcnemar([[0, 0], [3, 0]], exact=True).pvalue  # 0.25


def test_a_large_move_is_a_regression(monkeypatch, capsys, tmp_path):
    old = np.random.default_rng(0).random(N) < 0.4
    new = old & (np.random.default_rng(1).random(N) < 0.5)  # about half the robust images lost
    base, moved = boards(tmp_path, old, new)
    code, out, _ = run_cli(
        monkeypatch, capsys, "leaderboard", "diff", str(base), str(moved), "--significance"
    )
    assert code == 1 and "significant at alpha 0.05" in out


def test_without_stored_flags_the_counts_are_tested(tmp_path):
    base, new = tmp_path / "base" / "pgd20.csv", tmp_path / "new" / "pgd20.csv"
    upsert_rows(base, [leaderboard_row("a", 40.0, n=100)])
    upsert_rows(new, [leaderboard_row("a", 30.0, n=100)])
    diff = diff_boards(base, new, significance=0.05)
    change = next(c for c in diff.changes if c.metric == "ra")
    assert change.test.startswith("Fisher")
    assert change.p == fisher_exact([[30, 70], [40, 60]]).pvalue  # about 0.18
    assert diff.ok  # 10 points on 100 images is not significant
    assert not diff_boards(base, new).ok  # ... but it is beyond --tol


def test_bad_alpha_is_one_line(monkeypatch, capsys, tmp_path):
    path = tmp_path / "pgd20.csv"
    upsert_rows(path, [leaderboard_row("a")])
    code, _, err = run_cli(
        monkeypatch, capsys, "leaderboard", "diff", str(path), str(path), "--significance",
        "--alpha", "2",
    )  # fmt: skip
    assert_one_line_error(code, err, "--alpha must be in (0, 1)")
