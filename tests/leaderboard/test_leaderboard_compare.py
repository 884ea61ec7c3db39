"""`robench compare`: a paired test on stored flags, refused on different images."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_one_line_error, run_cli
from statsmodels.stats.contingency_tables import mcnemar

from robench.errors import RobenchError
from robench.leaderboard.compare import compare
from robench.runs import FlagStore


def store(folder, robust, *, n=None, eps=8 / 255, model="m", complete=True):
    """A flag folder holding one model's clean and PGD flags, as robench stores them."""
    robust = np.asarray(robust, dtype=bool)
    n = n or len(robust)
    s = FlagStore(folder)
    base = {"model": model, "data": "d", "seed": 0, "batch_size": 8, "amp": "None"}
    pgd = {**base, "attack": {"name": "pgd", "params": {"eps": eps}}, "corruption": None}
    clean = {**base, "attack": None, "corruption": None}
    done = n if complete else n // 2
    s.file("clean", clean, n).save(np.ones(done, dtype=bool), np.ones(done, dtype=bool))
    s.file("pgd", pgd, n).save(np.ones(done, dtype=bool), robust[:done])
    return folder


@pytest.fixture
def two(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.random(300) < 0.5, rng.random(300) < 0.35
    return store(tmp_path / "a", a, model="A"), store(tmp_path / "b", b, model="B"), a, b


def test_paired_test_on_the_same_images(two):
    folder_a, folder_b, a, b = two
    c = compare(folder_a, folder_b)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    assert (c.result.only_a, c.result.only_b, c.result.n) == (only_a, only_b, 300)
    expected = mcnemar([[0, only_a], [only_b, 0]], exact=True).pvalue
    assert c.result.p_value == pytest.approx(expected)
    assert c.result.diff == pytest.approx(100 * (a.mean() - b.mean()))
    ta = compare(folder_a, folder_b, metric="ta")
    assert ta.result.diff == 0 and ta.result.p_value == 1.0


def test_cli_prints_difference_interval_and_p(monkeypatch, capsys, two):
    folder_a, folder_b, *_ = two
    code, out, _ = run_cli(monkeypatch, capsys, "compare", str(folder_a), str(folder_b))
    assert code == 0
    assert "n=300" in out and "McNemar" in out and "A - B =" in out and "95% interval" in out


def test_different_images_or_protocols_are_refused(monkeypatch, capsys, tmp_path):
    a = store(tmp_path / "a", np.ones(40, dtype=bool), model="A")
    b = store(tmp_path / "b", np.ones(20, dtype=bool), model="B")
    code, _, err = run_cli(monkeypatch, capsys, "compare", str(a), str(b))
    assert_one_line_error(code, err, "not evaluated on the same images")
    assert "n 40 vs 20" in err
    c = store(tmp_path / "c", np.ones(40, dtype=bool), model="C", eps=4 / 255)
    with pytest.raises(RobenchError, match=r"attack\.params\.eps"):
        compare(a, c)


def test_incomplete_or_missing_evaluations_and_bad_arguments(monkeypatch, capsys, tmp_path):
    a = store(tmp_path / "a", np.ones(40, dtype=bool), model="A")
    half = store(tmp_path / "half", np.ones(40, dtype=bool), model="H", complete=False)
    with pytest.raises(RobenchError, match="no complete stored 'pgd'"):
        compare(a, half)  # an interrupted evaluation is not a result
    code, _, err = run_cli(monkeypatch, capsys, "compare", str(a), str(tmp_path / "nope"))
    assert_one_line_error(code, err, "neither a run directory nor a folder of stored flags")
    code, _, err = run_cli(monkeypatch, capsys, "compare", str(a), str(a), "--metric", "mean")
    assert_one_line_error(code, err, "per-image metrics are ta, ra")
    code, _, err = run_cli(monkeypatch, capsys, "compare", str(a), str(a), "--suite", "nope")
    assert code == 2 and "Traceback" not in err
