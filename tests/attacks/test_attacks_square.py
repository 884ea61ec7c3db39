"""Square (robench/attacks/square.py): reproducible per batch, no side effects on the caller's
random state, and as strong as torchattacks' independent implementation on the same model."""

from __future__ import annotations

import pytest
import torch

from robench.attacks import build_attack
from robench.config import AttackSpec
from robench.models import create

EPS = 8 / 255


def _tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return create("preact_tiny", num_classes=10).eval()


def test_square_is_reproducible_and_leaves_the_global_generator_alone():
    model, x = _tiny(), torch.rand(8, 3, 32, 32)
    y = model(x).argmax(1)
    attack = build_attack(AttackSpec("square", {"eps": EPS, "queries": 20}))
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = attack.perturb(model, x, y, torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), before)
    b = attack.perturb(model, x, y, torch.Generator().manual_seed(5))
    c = attack.perturb(model, x, y, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - x).abs().max() <= EPS + 1e-6


def test_square_never_reads_a_gradient():
    class NoBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            raise AssertionError("Square asked for a gradient")

    inner = _tiny()
    model = torch.nn.Sequential(torch.nn.Identity(), inner)
    model[0].forward = NoBackward.apply  # type: ignore[method-assign]
    x = torch.rand(4, 3, 32, 32)
    build_attack(AttackSpec("square", {"eps": EPS, "queries": 5})).perturb(
        model, x, model(x).argmax(1)
    )


@pytest.mark.external
def test_square_matches_torchattacks_square_on_the_adversarially_trained_resnet20(
    adversarial_resnet20, exact_test_batch
):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = (t[:48] for t in exact_test_batch)
    model = adversarial_resnet20
    ours = build_attack(AttackSpec("square", {"eps": EPS, "queries": 50}))
    x_ours = ours.perturb(model, x, y, torch.Generator().manual_seed(0))
    theirs = torchattacks.Square(model, eps=EPS, n_queries=50, seed=0)
    x_theirs = theirs(x, y)
    with torch.no_grad():
        ra_ours = (model(x_ours).argmax(1) == y).float().mean().item() * 100
        ra_theirs = (model(x_theirs).argmax(1) == y).float().mean().item() * 100
        ta = (model(x).argmax(1) == y).float().mean().item() * 100
    assert ra_ours < ta - 5 and ra_theirs < ta - 5  # both find adversarial examples
    assert abs(ra_ours - ra_theirs) <= 12.5, (ra_ours, ra_theirs)  # within 6 of 48 images
