"""The contract every registered eval suite keeps, checked for each name in EVAL_SUITES.

A suite is one file and one registry entry: its board schema is self-consistent, its
evaluations build through ATTACKS, it refuses exactly the overrides it does not accept, and the
rows it makes from flags fill its boards' columns exactly (what `upsert_rows` demands), with
the numbers the flags say.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from robench.attacks import ATTACKS, build_attack
from robench.errors import ConfigError
from robench.eval.suites import (
    EVAL_SUITES,
    EvalOptions,
    Evaluation,
    Overrides,
    expand_suites,
    get_eval_suite,
    suite_names,
)
from robench.eval.suites.base import OVERRIDES, complete_rows
from robench.flags import Flags, percent
from robench.leaderboard import SCHEMAS
from robench.leaderboard.store import upsert_rows
from robench.stats import wilson

N = 40
NAMES = EVAL_SUITES.names()
OVERRIDE_VALUES: dict[str, Any] = {"eps": "4/255", "steps": 3, "step_size": "1/255", "norm": "l2"}
# What a suite needs beyond the defaults to have evaluations at all (its own CLI options).
NEEDS = {"torchattacks": {"bridge": ("PGD", (("eps", 8 / 255), ("steps", 2)))}}


def options(name: str, **extra: Any) -> EvalOptions:
    return EvalOptions(**NEEDS.get(name, {}), **extra)


class FakeScorer:
    """Deterministic per-evaluation flags (a hash of the evaluation's name), no model."""

    def __init__(self, options: EvalOptions) -> None:
        self.options = options
        self.batch_size = 20
        self.asked: list[str] = []

    def flags(self, evaluation: Evaluation, *, keep_examples: bool = False) -> Flags:
        self.asked.append(evaluation.name)
        seed = int(hashlib.sha256(evaluation.name.encode()).hexdigest()[:8], 16)
        clean = np.random.default_rng(0).random(N) < 0.7  # the same clean flags everywhere
        measured = clean & (np.random.default_rng(seed).random(N) < 0.6)
        indices = evaluation.indices(N, lambda e: self.flags(e).measured)
        if indices is not None:  # a subset (the masking cross-check's): its images only
            clean, measured = clean[indices], measured[indices]
        if evaluation.attack is None and evaluation.corruption is None:
            return Flags(clean, None, 0.0)
        return Flags(clean, measured, 0.0)

    def row(self, suite: str, attack: dict[str, Any], overrides: str) -> dict[str, Any]:
        base = {
            "run": "r",
            "pretext": "none",
            "scenario": "P1F4",
            "model": "m",
            "checkpoint": "best_ta",
            "epochs_to_best": 1,
            "train_suite": "",
            "train_suite_sha256": "",
            "run_dir": "/r",
            "model_id": "run:0123456789abcdef",
            "suite": suite,
            "attack": "",
            "eps": "",
            "eps_value": None,
            "step_size": "",
            "steps": None,
            "restarts": None,
        }
        return {
            **base,
            **attack,
            **self.long_row(),
            "flags": "",
            "overrides": overrides,
            "eval_seconds": 0.0,
            "flag_dir": "/r/eval",
            "flag_files": "",
        }

    def long_row(self) -> dict[str, Any]:
        return {
            "run": "r",
            "checkpoint": "best_ta",
            "n_eval": N,
            "seed": 0,
            "dataset": "d",
            "is_jpeg_copy": False,
            "device": "cpu",
            "model_id": "run:0123456789abcdef",
            "robench_version": "0",
            "git_revision": "g",
            "date": "now",
            "precision": "fp32",
            "torch_version": "2",
            "schema_version": 2,
        }


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_consistent_and_indexed(name):
    suite = get_eval_suite(name)
    assert suite.name == name and suite.description
    for board in suite.boards:
        columns = set(board.names)
        assert len(columns) == len(board.names), "a column is declared twice"
        for part in (board.key, board.metrics, board.percent, board.shown, board.display_metrics):
            assert set(part) <= columns, (board.name, set(part) - columns)
        assert board.display != "metrics" or board.display_metrics
        assert SCHEMAS[board.name] is board  # the leaderboard index holds the suite's schema


@pytest.mark.parametrize("name", NAMES)
def test_evaluations_are_named_once_and_build_through_the_registry(name):
    evaluations = get_eval_suite(name).evaluations(options(name))
    names = [e.name for e in evaluations]
    assert len(names) == len(set(names))
    for evaluation in evaluations:
        if evaluation.attack is not None:
            assert evaluation.attack.name in ATTACKS
            attack = build_attack(evaluation.attack)
            assert attack.amp_dtype is None


@pytest.mark.parametrize("name", NAMES)
def test_refuses_exactly_the_overrides_it_does_not_accept(name):
    suite = get_eval_suite(name)
    assert set(suite.accepts) <= set(OVERRIDES)
    for key in OVERRIDES:
        overrides = Overrides(**{key: OVERRIDE_VALUES[key]})
        if key in suite.accepts:
            suite.check(overrides)
        else:
            with pytest.raises(ConfigError) as info:
                suite.check(overrides)
            assert str(info.value) == suite.refusal and suite.refusal


@pytest.mark.parametrize("name", NAMES)
def test_rows_fill_the_boards_exactly_with_what_the_flags_say(name, tmp_path):
    suite = get_eval_suite(name)
    scorer = FakeScorer(options(name))
    files = {e.name: f"{e.name}-key.npz" for e in suite.evaluations(options(name))}
    rows = complete_rows(suite, suite.rows(scorer), files)
    assert set(rows) == {b.name for b in suite.boards}
    # Every evaluation the suite declares is asked for, and nothing else.
    assert set(scorer.asked) == {e.name for e in suite.evaluations(options(name, batch_size=20))}
    for board in suite.boards:
        upsert_rows(tmp_path / f"{board.name}.csv", rows[board.name], board)  # exact columns
    row = rows[suite.board.name][0]
    clean = np.random.default_rng(0).random(N) < 0.7
    assert row["ta"] == pytest.approx(percent(clean))
    by_name = {e.name: scorer.flags(e) for e in suite.evaluations(options(name, batch_size=20))}
    for column in suite.board.names:
        if column in by_name and column != "clean":  # a per-evaluation column (fog_128, ...)
            assert row[column] == pytest.approx(percent(by_name[column].measured))
    # Every percentage has its Wilson interval around it, from the count and n.
    for board in suite.boards:
        assert set(board.intervals) == {c for c in board.percent if not c.endswith(("_lo", "_hi"))}
        for board_row in rows[board.name]:
            for metric in board.intervals:
                lo, hi = board_row[metric + "_lo"], board_row[metric + "_hi"]
                assert lo <= board_row[metric] <= hi, (metric, lo, board_row[metric], hi)
                count = board_row[metric] * N / 100
                assert (lo, hi) == pytest.approx(wilson(count, N))
    # The metrics that are one evaluation's flags point at its file.
    pointers = dict(p.split("=") for p in row["flag_files"].split(";"))
    assert pointers == {m: f"{e}-key.npz" for m, e in suite.flag_metrics.items()}


def test_corruption_columns_average_their_five_severities():
    suite = get_eval_suite("corruptions")
    scorer = FakeScorer(EvalOptions())
    rows = suite.rows(scorer)
    row, long_rows = rows["corruptions"][0], rows["corruptions_long"]
    assert len(long_rows) == 75
    for name in ("gaussian_noise", "fog", "jpeg_compression"):
        per_severity = [
            percent(scorer.flags(Evaluation(f"{name}_{s}", corruption=(name, s))).measured)
            for s in range(1, 6)
        ]
        assert row[name] == pytest.approx(float(np.mean(per_severity)))
        mine = [r["accuracy"] for r in long_rows if r["corruption"] == name]
        assert mine == pytest.approx(per_severity)
    assert row["mean"] == pytest.approx(float(np.mean([r["accuracy"] for r in long_rows])))


def test_all_runs_every_suite_with_pgd20_first():
    # the paper's L-inf suites: not those that need options of their own (torchattacks:
    # --attack), nor the L2 threat model's
    ready = [n for n in suite_names() if n not in NEEDS and not n.endswith("-l2")]
    assert [s.name for s in expand_suites("all")] == ready
    assert suite_names()[0] == "pgd20" and set(suite_names()) == set(NAMES)
    with pytest.raises(ConfigError, match="unknown eval suite"):
        get_eval_suite("pgd21")


def test_l2_suites_are_their_l_inf_suites_in_the_l2_ball():
    from robench.attacks import build_attack

    for name, attack in (("pgd20-l2", "pgd"), ("autoattack-l2", "autoattack")):
        suite = get_eval_suite(name)
        spec = next(e.attack for e in suite.evaluations(EvalOptions()) if e.name == attack)
        assert spec.params["norm"] == "l2" and spec.params["eps"] in (0.5, "0.5")
        assert build_attack(spec).norm == "l2"
        row = suite.rows(FakeScorer(EvalOptions()))[suite.board.name][0]
        assert row["norm"] == "l2" and row["eps"] == "0.5"
    square = get_eval_suite("pgd20-l2").evaluations(EvalOptions())[-1]
    assert square.attack.name == "square" and square.attack.params["norm"] == "l2"
    row = get_eval_suite("pgd20").rows(FakeScorer(EvalOptions()))["pgd20"][0]
    assert row["norm"] == "linf"


@pytest.mark.parametrize(
    ("name", "attack", "eps"),
    [("pgd20", "pgd", 0.5), ("autoattack", "autoattack", 0.5), ("pgd20-l2", "pgd", 8 / 255)],
)
def test_norm_switches_the_threat_model_and_its_default_budget(name, attack, eps):
    suite = get_eval_suite(name)
    other = "linf" if name.endswith("-l2") else "l2"
    options = EvalOptions(overrides=Overrides(norm=other))
    suite.check(options.overrides)
    spec = next(e.attack for e in suite.evaluations(options) if e.name == attack)
    assert spec.params.get("norm", "linf") == other
    assert float(spec.params["eps"]) == pytest.approx(eps)
    row = suite.rows(FakeScorer(options))[suite.board.name][0]
    assert row["norm"] == other and row["overrides"] == f"norm={other}"
    given = EvalOptions(overrides=Overrides(norm=other, eps="0.25"))
    spec = next(e.attack for e in suite.evaluations(given) if e.name == attack)
    assert float(spec.params["eps"]) == pytest.approx(0.25)  # --eps wins over the default


def test_norm_is_refused_where_it_means_nothing():
    with pytest.raises(ConfigError, match="must be one of linf, l2"):
        Overrides(norm="l1")
    for name in ("unforeseen", "corruptions"):
        with pytest.raises(ConfigError):
            get_eval_suite(name).check(Overrides(norm="l2"))


def test_published_numbers_go_to_the_boards_that_show_them():
    published = {"published_ta": 90.0, "published_aa": 50.0, "published_source": "snapshot"}
    for name in NAMES:
        suite = get_eval_suite(name)
        rows = complete_rows(suite, suite.rows(FakeScorer(options(name))), {}, published)
        row = rows[suite.board.name][0]
        if name in ("pgd20", "autoattack", "pgd20-l2", "autoattack-l2"):
            assert {k: row[k] for k in published} == published
        else:
            assert not set(published) & set(row)
