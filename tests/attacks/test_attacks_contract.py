"""What every registered attack promises, checked for each name in `ATTACKS`.

- the result stays inside the threat model: the eps-ball (in the attack's norm) and [0, 1]
  for pixel-ball attacks such as PGD; for the unforeseen attacks (strengths on Kang et al.'s
  scales, budgets on their own variables) an image of the same shape and dtype, finite and in
  [0, 1];
- the model comes back in exactly the mode it was given, submodule by submodule, and its
  BatchNorm statistics untouched (attacks craft in eval mode by default);
- x is never modified in place;
- it attacks: on a small model labelled by its own predictions (clean accuracy 100%), robust
  accuracy (correct clean AND under attack) is at most, and in fact below, clean accuracy.

A newly registered attack fails here until EXAMPLE_PARAMS has small constructor params for it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robench.attacks import ATTACKS
from robench.attacks.unforeseen import PROTOCOL_STRENGTHS, UnforeseenAttack
from robench.models import create

N = 8
# Small constructor params per registered name: few steps, so every attack runs in well
# under a second on preact_tiny. Unforeseen attacks at their larger protocol strength.
EXAMPLE_PARAMS: dict[str, dict] = {
    "pgd": dict(eps=8 / 255, step_size=2 / 255, steps=3),
    "multi_pgd": dict(eps=8 / 255, step_size=2 / 255, steps=3),
    "autoattack": dict(eps=8 / 255, batch_size=N),
    "square": dict(eps=8 / 255, queries=20),
    "torchattacks": dict(attack="PGD", eps=8 / 255, alpha=2 / 255, steps=3),
    **{family: dict(eps=strengths[1], steps=3) for family, strengths in PROTOCOL_STRENGTHS.items()},
}


def _build(name: str):
    if name not in EXAMPLE_PARAMS:
        pytest.fail(
            f"attack {name!r} is registered in ATTACKS but has no entry in EXAMPLE_PARAMS "
            f"({__file__}): add small constructor params for it so it gets the contract tests"
        )
    return ATTACKS.create(name, **EXAMPLE_PARAMS[name])


def _model() -> nn.Module:
    """A real (tiny, untrained) classifier: normalisation, BatchNorm, trunk and head."""
    torch.manual_seed(0)
    return create("preact_tiny")


def _easy_model() -> nn.Module:
    """An untrained linear classifier: its decision boundaries lie close to every image, so
    any working attack flips predictions (preact_tiny predicts one class for all of them)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))


def _mixed_modes(model: nn.Module) -> dict[str, bool]:
    """Every other submodule in eval mode, the rest (the root too) in train mode."""
    model.train()
    for i, module in enumerate(model.modules()):
        if i % 2:
            module.training = False
    modes = {name: module.training for name, module in model.named_modules()}
    assert len(set(modes.values())) == 2  # really mixed
    return modes


def _inputs(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images labelled with the model's own clean predictions (clean accuracy 100%)."""
    x = torch.rand(N, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model.eval()(x).argmax(1)
    return x, y


@pytest.mark.parametrize("name", ATTACKS.names())
def test_every_registered_attack_has_example_params(name):
    _build(name)


def test_example_params_name_only_registered_attacks():
    stale = sorted(set(EXAMPLE_PARAMS) - set(ATTACKS.names()))
    assert not stale, f"EXAMPLE_PARAMS lists attacks that are not registered: {stale}"


def _assert_in_threat_model(attack, x: torch.Tensor, x_adv: torch.Tensor) -> None:
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert torch.isfinite(x_adv).all()
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    if not isinstance(attack, UnforeseenAttack):  # a pixel ball of radius eps
        delta = (x_adv - x).flatten(1)
        size = delta.abs().amax(1) if attack.norm == "linf" else delta.norm(dim=1)
        assert float(size.max()) <= attack.eps + 1e-6, (attack.norm, float(size.max()))
    assert not torch.equal(x_adv, x)  # it moved


@pytest.mark.parametrize("name", ATTACKS.names())
def test_result_stays_in_the_threat_model(name):
    attack = _build(name)
    model = _model()
    x, y = _inputs(model)
    _assert_in_threat_model(
        attack, x, attack.perturb(model, x, y, torch.Generator().manual_seed(0))
    )


@pytest.mark.fastpath
@pytest.mark.parametrize("name", ATTACKS.names())
def test_result_stays_in_the_threat_model_under_bf16_autocast(name):
    """The CUDA fast path's model autocast (bf16), forced on the CPU: the same guarantees."""
    attack = _build(name)
    attack.amp_dtype = torch.bfloat16
    model = _model()
    x, y = _inputs(model)
    _assert_in_threat_model(
        attack, x, attack.perturb(model, x, y, torch.Generator().manual_seed(0))
    )


@pytest.mark.parametrize("name", ATTACKS.names())
def test_restores_every_submodules_mode_and_leaves_batchnorm_and_x_alone(name):
    attack = _build(name)
    model = _model()
    x, y = _inputs(model)
    modes = _mixed_modes(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x_before = x.clone()
    attack.perturb(model, x, y, torch.Generator().manual_seed(0))
    assert {n: m.training for n, m in model.named_modules()} == modes
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, state[k])]
    assert not changed, f"{name} changed {changed[:5]}"
    assert torch.equal(x, x_before)


@pytest.mark.parametrize("name", ATTACKS.names())
def test_robust_accuracy_is_below_clean_accuracy(name):
    attack = _build(name)
    model = _easy_model()
    x, y = _inputs(model)
    x_adv = attack.perturb(model, x, y, torch.Generator().manual_seed(0))
    with torch.no_grad():
        clean = model(x).argmax(1) == y
        robust = clean & (model(x_adv).argmax(1) == y)
    clean_acc, robust_acc = float(clean.float().mean()), float(robust.float().mean())
    assert clean_acc == 1.0  # labelled by its own predictions
    assert robust_acc <= clean_acc
    # ... and strictly: the attack changes predictions (observed: 3 to 8 of 8 images flip).
    assert robust_acc < clean_acc, f"{name} fooled none of {N} images"
