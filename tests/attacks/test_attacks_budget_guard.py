"""PGD's budget guard fires on a broken projection: `perturb` refuses to return such a result.

The guard (`Attack._check_budget`) is what keeps a projection bug from silently inflating
robustness numbers; here a subclass breaks the projection on purpose, once so the result
leaves the eps-ball (staying in [0, 1]) and once so it leaves [0, 1] (staying in the ball).
"""

from __future__ import annotations

import re

import pytest
import torch

from robench.attacks import PGD
from robench.models import create

EPS = {"linf": 8 / 255, "l2": 0.5}
D = 3 * 32 * 32


def _uniform_delta(x: torch.Tensor, norm: str, size: float) -> torch.Tensor:
    """The same positive change on every pixel, of `size` in the attack's norm."""
    per_pixel = size if norm == "linf" else size / D**0.5
    return torch.full_like(x, per_pixel)


class _OutsideTheBall(PGD):
    """Steps to twice the budget (in range for mid-grey images), no projection onto the ball."""

    def _project(self, x, x_adv):
        return (x + _uniform_delta(x, self.norm, 2 * self.eps)).clamp(0, 1)


class _OutsideTheRange(PGD):
    """Stays exactly on the ball's surface but never clips to [0, 1]."""

    def _project(self, x, x_adv):
        return x + _uniform_delta(x, self.norm, self.eps)


def _setup(value: float):
    torch.manual_seed(0)
    model = create("preact_tiny").eval()
    x = torch.full((4, 3, 32, 32), value)
    return model, x, torch.zeros(4, dtype=torch.long)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_a_result_outside_the_eps_ball_is_refused(norm):
    model, x, y = _setup(0.5)  # x + 2 eps stays inside [0, 1]
    PGD(EPS[norm], EPS[norm] / 4, 2, norm=norm).perturb(model, x, y)  # the real one passes
    attack = _OutsideTheBall(EPS[norm], EPS[norm] / 4, 2, norm=norm)
    with pytest.raises(RuntimeError, match="left its threat model") as info:
        attack.perturb(model, x, y)
    message = str(info.value)
    size, eps = map(float, re.search(r"\|delta\| = (\S+) > eps (\S+) ", message).groups())
    assert message.startswith(f"pgd-{norm} ")
    assert size == pytest.approx(2 * EPS[norm], abs=5e-6)  # printed to 6 decimals
    assert eps == pytest.approx(EPS[norm], abs=1e-6)
    assert "outside [0, 1] (False)" in message


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_a_result_outside_0_1_is_refused(norm):
    model, x, y = _setup(1.0)  # white: every step up leaves [0, 1]
    PGD(EPS[norm], EPS[norm] / 4, 2, norm=norm).perturb(model, x, y)  # the real one passes
    attack = _OutsideTheRange(EPS[norm], EPS[norm] / 4, 2, norm=norm)
    with pytest.raises(RuntimeError, match="left its threat model") as info:
        attack.perturb(model, x, y)
    assert "outside [0, 1] (True)" in str(info.value)
