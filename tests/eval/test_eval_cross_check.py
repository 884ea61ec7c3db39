"""The gradient-masking cross-check's arithmetic and wiring (robench/eval/suites/cross_check.py).

The zoo of masked models it must catch is tests/eval/test_eval_masking_zoo.py; here: which
images it attacks, when it flags, what worst_ra counts, how a row records it, turning it off.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import array_target
from rich.console import Console

from robench.config import CrossCheckConfig
from robench.errors import ConfigError
from robench.eval.evaluator import Evaluator
from robench.eval.suites import EvalOptions, Overrides
from robench.eval.suites.base import subset_indices
from robench.eval.suites.cross_check import CrossCheck, masking_flags, untouched_flags
from robench.models import create
from robench.runtime import Runtime


def _check(white: list[bool], free: list[bool], n: int = 10) -> CrossCheck:
    indices = np.arange(len(white)) * 2
    assert indices.max() < n
    return CrossCheck("square-linf", 50, 0.02, indices, np.array(white), np.array(free))


def test_the_subset_is_seeded_sorted_and_never_larger_than_the_test_set():
    a, b = subset_indices(1000, 128, 0), subset_indices(1000, 128, 0)
    assert np.array_equal(a, b) and len(a) == 128 and len(set(a)) == 128
    assert np.all(np.diff(a) > 0) and a.max() < 1000
    assert not np.array_equal(a, subset_indices(1000, 128, 1))
    assert np.array_equal(subset_indices(50, 128, 0), np.arange(50))


def test_points_only_the_cross_check_fools_are_counted_and_flagged_beyond_the_margin():
    one = _check([True, True, True, False], [True, False, True, False])
    assert one.fooled_only_by_cross_check == 1 and not one.suspected  # one point is noise
    two = _check([True, True, True, False], [False, False, True, True])
    assert two.fooled_only_by_cross_check == 2 and two.suspected
    assert two.flags() == ["gradient_masking_suspected:2/4"]
    robust = np.ones(10, dtype=bool)
    worst = two.worst(robust)
    assert robust.all()  # not modified in place
    assert worst.tolist() == [False, True, False] + [True] * 7  # indices 0 and 2 fooled


def test_the_margin_scales_with_the_subset():
    white = [True] * 200
    free = [False] * 4 + [True] * 196
    check = CrossCheck("square-linf", 50, 0.02, np.arange(200), np.array(white), np.array(free))
    assert not check.suspected  # 4 of 200 is within 2 %
    check = CrossCheck("square-linf", 50, 0.02, np.arange(200), np.array(white), ~np.array(free))
    assert check.suspected


def test_an_attack_that_changed_nothing_on_an_accurate_model_is_flagged():
    clean = np.array([True] * 30 + [False] * 20)
    assert untouched_flags(clean, clean.copy()) == ["attack_changed_no_prediction"]
    changed = clean.copy()
    changed[0] = False
    assert untouched_flags(clean, changed) == []
    few = np.array([True] * 5 + [False] * 95)  # 5 correct images say nothing
    assert untouched_flags(few, few) == []
    assert masking_flags(None, clean, changed) == ["cross_check_off"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"images": -1}, "images"), ({"queries": 0}, "queries"), ({"margin": float("nan")}, "mar")],
)
def test_bad_settings_are_refused(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        CrossCheckConfig(**kwargs)


def _row(tmp_path, cfg: CrossCheckConfig) -> dict:
    torch.manual_seed(0)
    model = create("preact_tiny", num_classes=10).eval()
    options = EvalOptions(overrides=Overrides(steps=2), cross_check=cfg)
    target = array_target(model, tmp_path, n=24)
    [(_, [row])] = Evaluator(target, Runtime.select("cpu"), Console(quiet=True), options).run(
        "pgd20"
    )
    return row


def test_every_pgd20_row_records_its_cross_check(tmp_path):
    row = _row(tmp_path / "a", CrossCheckConfig(images=16, queries=5))
    assert row["cross_check"] == "square-linf"
    assert (row["cross_check_n"], row["cross_check_queries"]) == (16, 5)
    assert 0 <= row["cross_check_fooled"] <= 16
    assert row["worst_ra"] <= row["ra"]
    assert "cross_check_off" not in row["flags"]
    flag_files = sorted(p.name for p in (tmp_path / "a").glob("*.npz"))
    assert any(name.startswith("cross_check_square_linf") for name in flag_files), flag_files


def test_a_cross_check_turned_off_says_so_in_the_row(tmp_path):
    row = _row(tmp_path, CrossCheckConfig(images=0))
    assert row["cross_check"] == "off" and row["cross_check_n"] == 0
    assert row["worst_ra"] == row["ra"]
    assert "cross_check_off" in row["flags"].split(";")
