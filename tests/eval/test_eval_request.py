"""`robench eval`'s rules live in EvalRequest: a Python caller gets the same one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from robench.errors import ConfigError, RobenchError
from robench.eval.request import EvalRequest

RUN = (Path("runs/a"),)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"suite": "pgd21"}, "unknown eval suite 'pgd21'"),
        ({"checkpoint": "best"}, "--checkpoint 'best' must be one of best_ta, best_ra, last"),
        ({"n": 0}, "--n must be >= 1"),
        ({"batch_size": 0}, "--batch-size must be >= 1"),
        ({"model": "m.py:f"}, "go together"),
        ({"run_dirs": ()}, "give run directories"),
        ({"model": "m.py:f", "weights": Path("w.pt")}, "one kind of model"),
        ({"robustbench": "Standard"}, "one kind of model"),
        ({"run_dirs": (), "robustbench": "Standard", "threat_model": "linf"}, "Linf or L2"),
        ({"ensemble": True}, "at least two run directories"),
        ({"corruptions_dir": Path("/nowhere/at/all")}, "is not a directory"),
        ({"eps": "2"}, "is outside [0, 1]"),
        ({"step_size": "0"}, "--step-size 0 must be in (0, 1]"),  # eps 0 is allowed: RA = TA
        ({"steps": 0}, "--steps must be >= 1"),
    ],
)
def test_bad_requests_fail_before_anything_loads(kwargs, needle):
    with pytest.raises((RobenchError, ConfigError)) as info:
        EvalRequest(**{"run_dirs": RUN, **kwargs})
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_good_request_carries_its_options():
    request = EvalRequest(run_dirs=RUN, suite="unforeseen", steps=5, seed=3)
    options = request.options()
    assert (options.seed, options.overrides.steps, options.overrides.eps) == (3, 5, None)
    assert request.state_root == Path("leaderboards/.eval-state")
