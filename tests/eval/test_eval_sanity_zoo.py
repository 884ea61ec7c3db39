"""A zoo of masked and broken models around real ones (issue #18, section 1: the checks).

Every model here would get a clean-looking number from a gradient attack that trusts its
gradients: PGD cannot move on a NaN, zero or missing input gradient. Each must be refused
with one line or flagged in its row; the honest models must not be flagged.
(A detached input with a tiny leak still has usable-looking gradients: catching it needs the
gradient-free cross-check, tests/eval/test_eval_masking_zoo.py, not these checks.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import array_target
from rich.console import Console
from torch import nn

from robench.eval.evaluator import Evaluator
from robench.eval.sanity import EvaluationRefused
from robench.eval.suites import EvalOptions, Overrides
from robench.models import create
from robench.runtime import Runtime

CPU = Runtime.select("cpu")
QUIET = Console(quiet=True)
FAST = EvalOptions(overrides=Overrides(steps=2))


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return create("preact_tiny", num_classes=10).eval()


class Wrap(nn.Module):
    def __init__(self, inner: nn.Module, how: str) -> None:
        super().__init__()
        self.inner, self.how = inner, how

    def forward(self, x: torch.Tensor):
        if self.how == "nan_gradient":  # sqrt(x - x): 0 in value, NaN in gradient
            return self.inner(x + torch.sqrt(x - x))
        if self.how == "detached":
            return self.inner(x.detach())
        if self.how == "more_classes":
            return torch.cat([self.inner(x)] * 100, 1)
        if self.how == "flat":
            return self.inner(x).flatten()
        if self.how == "list":
            return [self.inner(x)]
        if self.how == "nan_logits":
            return self.inner(x) * float("nan")
        raise AssertionError(self.how)


def _row(model: nn.Module, tmp_path, options: EvalOptions = FAST, **kwargs) -> dict:
    target = array_target(model, tmp_path, **kwargs)
    [(_, [row])] = Evaluator(target, CPU, QUIET, options).run("pgd20")
    return row


@pytest.mark.parametrize(
    ("how", "flag"),
    [("nan_gradient", "nonfinite_gradients:8/8"), ("detached", "zero_gradients:8/8")],
)
def test_masked_gradients_are_flagged_and_never_crash_the_attack(tmp_path, how, flag):
    row = _row(Wrap(_tiny(), how), tmp_path)
    assert flag in row["flags"].split(";")
    assert row["ra"] == row["ta"]  # the attack could not move: the flag is what says so


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("more_classes", r"shape \(8, 1000\); logits of shape \(8, 10\)"),
        ("flat", r"shape \(80,\)"),
        ("list", "returned list"),
        ("nan_logits", "NaN or infinite"),
    ],
)
def test_broken_outputs_are_refused(tmp_path, how, needle):
    with pytest.raises(EvaluationRefused, match=needle) as info:
        _row(Wrap(_tiny(), how), tmp_path)
    assert "\n" not in str(info.value)


def test_non_finite_or_integer_weights_are_refused(tmp_path):
    nan = _tiny()
    with torch.no_grad():
        next(nan.parameters())[0].fill_(float("nan"))
    with pytest.raises(EvaluationRefused, match="NaN or infinite"):
        _row(nan, tmp_path / "a")
    ints = _tiny()
    ints.register_parameter("scale", nn.Parameter(torch.ones(3, dtype=torch.int64), False))
    with pytest.raises(EvaluationRefused, match="not float"):
        _row(ints, tmp_path / "b")


def test_an_honest_model_is_not_flagged(tmp_path):
    assert _row(_tiny(), tmp_path)["flags"] == ""


@pytest.mark.slow
@pytest.mark.external
def test_the_external_models_are_honest_and_their_masked_copies_are_not(
    exact_test_batch, standard_resnet20, adversarial_resnet20, tmp_path
):
    x, y = exact_test_batch
    images = (x[:32].permute(0, 2, 3, 1) * 255).round().byte().numpy()
    labels = y[:32].numpy()
    data = {"images": images, "labels": labels}
    for i, model in enumerate((standard_resnet20, adversarial_resnet20)):
        # PGD-20, as the cross-check expects: a 2-step PGD is weaker than Square, honestly
        row = _row(model, tmp_path / f"honest{i}", EvalOptions(), name=f"h{i}", **data)
        assert row["flags"] == "" and row["ta"] > 50
    for how in ("nan_gradient", "detached"):
        row = _row(Wrap(standard_resnet20, how), tmp_path / how, name=how, **data)
        # PGD cannot move (only its random start does): it looks robust, and it is flagged
        assert row["flags"] and row["ra"] > 80 and np.isfinite(row["ta"])
