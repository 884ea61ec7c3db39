"""The torchattacks bridge: the same PGD as robench's, seeded, refusing bad names and options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robench.attacks import ATTACKS
from robench.errors import ConfigError


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)).eval()


def _batch(model: nn.Module, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return x, model(x).argmax(1)


def test_torchattacks_pgd_through_the_bridge_is_robench_pgd():
    """Without a random start both are the same iteration: sign steps of 2/255 on the
    cross-entropy, projected onto the 8/255 ball and [0, 1]."""
    model = _model()
    x, y = _batch(model)
    ours = ATTACKS.create("pgd", eps=8 / 255, step_size=2 / 255, steps=10, random_start=False)
    theirs = ATTACKS.create(
        "torchattacks", attack="PGD", eps=8 / 255, alpha=2 / 255, steps=10, random_start=False
    )
    a, b = ours.perturb(model, x, y), theirs.perturb(model, x, y)
    assert (a - b).abs().max() < 1e-5
    with torch.no_grad():
        assert torch.equal(model(a).argmax(1), model(b).argmax(1))
        assert (model(b).argmax(1) != y).float().mean() > 0.5  # it attacks


def test_random_starts_are_seeded_and_leave_the_callers_generator_alone():
    model = _model()
    x, y = _batch(model, 8)
    attack = ATTACKS.create("torchattacks", attack="PGD", eps=8 / 255, alpha=2 / 255, steps=2)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = attack.perturb(model, x, y, torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), before)
    again = attack.perturb(model, x, y, torch.Generator().manual_seed(5))
    other = attack.perturb(model, x, y, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_names_and_options_are_checked_before_anything_runs():
    with pytest.raises(ConfigError, match="torchattacks has no attack 'PDG'; available: APGD"):
        ATTACKS.create("torchattacks", attack="PDG")
    with pytest.raises(ConfigError, match="takes c, kappa, steps, lr; not eps"):
        ATTACKS.create("torchattacks", attack="CW", eps=0.1)


def test_an_unbounded_attack_is_checked_against_0_1_only():
    model = _model()
    x, y = _batch(model, 4)
    cw = ATTACKS.create("torchattacks", attack="CW", steps=3)
    assert cw.eps is None
    x_adv = cw.perturb(model, x, y)
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
