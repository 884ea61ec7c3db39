"""The unforeseen attacks (fog, snow, gabor, elastic, jpeg_linf, jpeg_l1) at robench's strengths.

The real-model checks share one fixture: every family at both protocol strengths, run once
(few steps, the first 32 exact test images, the standard ResNet-20, one seed). Everything else
uses a tiny model or a constant one on random images.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robench.attacks import ATTACKS, build_attack, model_mode
from robench.attacks.unforeseen import (
    FAMILIES,
    PROTOCOL_STRENGTHS,
    UnforeseenAttack,
    UnforeseenResult,
)
from robench.attacks.unforeseen.jpeg import L1_COORD_MAX, jpeg_codec
from robench.attacks.unforeseen.snow import BUDGET, region_means
from robench.config import AttackSpec
from robench.errors import ConfigError
from robench.runtime import Runtime


def unforeseen_attack(
    family: str, eps: float, steps: int, step_size: float | None = None, runtime=None
) -> UnforeseenAttack:
    """An unforeseen attack built the one way robench builds attacks (spec -> ATTACKS)."""
    attack = build_attack(
        AttackSpec(family, {"eps": eps, "steps": steps, "step_size": step_size}), runtime
    )
    assert isinstance(attack, UnforeseenAttack)
    return attack


N_IMAGES = 32  # the first exact test images; the standard ResNet-20 gets all 32 right
STEPS = 3  # enough for every family to fool it on 3 or more images at strength 1
SEED = 0


def _evaluate(model, x, y):
    with torch.no_grad():
        logits = model(x)
    return (logits.argmax(1) == y).float().mean().item(), F.cross_entropy(logits, y).item()


@pytest.fixture(scope="module")
def protocol_runs(standard_resnet20, exact_test_batch):
    """{(family, strength index): (result, adversarial accuracy, loss)} plus the clean pair."""
    x, y = exact_test_batch[0][:N_IMAGES], exact_test_batch[1][:N_IMAGES].long()
    runs = {"clean": _evaluate(standard_resnet20, x, y), "x": x}
    for family, strengths in PROTOCOL_STRENGTHS.items():
        for i, eps in enumerate(strengths):
            attack = unforeseen_attack(family, eps, STEPS)
            result = attack.run(standard_resnet20, x, y, torch.Generator().manual_seed(SEED))
            runs[family, i] = (result, *_evaluate(standard_resnet20, result.x_adv, y))
    return runs


def _assert_variables_in_budget(family: str, eps: float, result: UnforeseenResult) -> None:
    """Each family's budget, checked here independently of the attack's own check."""
    v, tol = result.variables, 1e-5
    if family == "fog":
        assert v.min() >= 0 and v.max() <= 1
    elif family == "snow":
        assert v.min() > 0 and v.max() <= 1
        assert region_means(v).max() <= BUDGET * (1 + tol)
    elif family == "gabor":
        assert v.abs().max() <= 1
        assert torch.all(v[result.context["mask"].expand_as(v) == 0] == 0)
    elif family in ("elastic", "jpeg_linf"):
        assert v.abs().max() <= eps * (1 + tol)
    elif family == "jpeg_l1":
        assert v.abs().sum(1).max() <= eps * (1 + tol)
        assert v.abs().max() <= L1_COORD_MAX * (1 + tol)
    else:
        raise AssertionError(family)


@pytest.mark.slow
@pytest.mark.external
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("level", [0, 1])
def test_output_shape_range_and_budget(protocol_runs, family, level):
    result, _, _ = protocol_runs[family, level]
    x = protocol_runs["x"]
    assert result.x_adv.shape == x.shape and result.x_adv.dtype == x.dtype
    assert torch.isfinite(result.x_adv).all()
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    eps = PROTOCOL_STRENGTHS[family][level]
    _assert_variables_in_budget(family, eps, result)
    # (run() already refused an excess over its tolerance; what can still be wrong is the
    # bookkeeping: the recorded excess is the worst over all iterates, the returned included)
    returned = unforeseen_attack(family, eps, STEPS).budget_excess(result.variables, result.context)
    assert float(returned.amax()) <= float(result.budget_excess)
    assert not torch.equal(result.x_adv, x)


@pytest.mark.slow
@pytest.mark.external
@pytest.mark.parametrize("family", FAMILIES)
def test_each_attack_lowers_a_standard_models_accuracy(protocol_runs, family):
    clean_acc, clean_loss = protocol_runs["clean"]
    _, acc, loss = protocol_runs[family, 0]  # the weaker strength
    assert clean_acc == 1.0
    assert acc < clean_acc  # observed: 3 (snow, gabor) to 32 (elastic, jpeg_linf) flipped
    assert loss > 3 * clean_loss  # observed: 5x (gabor) and more


@pytest.mark.slow
@pytest.mark.external
@pytest.mark.parametrize("family", FAMILIES)
def test_a_larger_strength_never_helps_the_model(protocol_runs, family):
    _, acc1, loss1 = protocol_runs[family, 0]
    _, acc2, loss2 = protocol_runs[family, 1]
    assert acc2 <= acc1 + 1 / N_IMAGES  # same seed; one image of slack
    assert loss2 >= loss1 - 0.05


def _tiny_net() -> nn.Module:
    """A few-thousand-parameter CNN (with BatchNorm): real gradients at almost no cost."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


class _Constant(nn.Module):
    """Logits that do not depend on the input: every input gradient is exactly zero."""

    def forward(self, x):
        return torch.zeros(len(x), 10) + 0 * x.sum()


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_gradient_and_flat_images_give_no_nan(family):
    x = torch.rand(4, 3, 32, 32)
    x[0] = 0  # black: fog's per-image maximum is 0
    x[1] = 1  # white
    eps = PROTOCOL_STRENGTHS[family][1]
    result = unforeseen_attack(family, eps, 3).run(
        _Constant(), x, torch.zeros(4).long(), torch.Generator().manual_seed(1)
    )
    assert torch.isfinite(result.x_adv).all() and torch.isfinite(result.variables).all()
    assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
    _assert_variables_in_budget(family, eps, result)


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_output_and_another_seed_differs(family):
    model = _tiny_net().eval()
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    attack = unforeseen_attack(family, PROTOCOL_STRENGTHS[family][1], 2)
    a = attack.perturb(model, x, y, torch.Generator().manual_seed(3))
    b = attack.perturb(model, x, y, torch.Generator().manual_seed(3))
    c = attack.perturb(model, x, y, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_registry_knows_the_six_families_and_builds_them_with_the_runtime_dtype():
    assert set(FAMILIES) <= set(ATTACKS.names())
    assert set(PROTOCOL_STRENGTHS) == set(FAMILIES)
    bf16 = Runtime(torch.device("cpu"), torch.bfloat16, channels_last=False, compile=False)
    for family in FAMILIES:
        eps = PROTOCOL_STRENGTHS[family][0]
        attack = unforeseen_attack(family, eps, 200, runtime=bf16)
        assert attack.name == family
        assert attack.eps == eps and attack.steps == 200 and attack.amp_dtype == torch.bfloat16
        same = ATTACKS.create(family, eps=eps)  # steps default to Kang et al.'s 200
        assert same.steps == 200 and same.step_size == attack.step_size
    with pytest.raises(ConfigError, match="valid names"):
        build_attack(AttackSpec("fogg", {"eps": 1.0}))


def test_default_step_sizes_follow_kang_et_al():
    assert unforeseen_attack("fog", 128, 200).step_size == pytest.approx(0.002236, abs=1e-6)
    assert unforeseen_attack("snow", 0.0625, 200).step_size == pytest.approx(0.002236, abs=1e-6)
    assert unforeseen_attack("gabor", 6.25, 200).step_size == pytest.approx(0.002236, abs=1e-6)
    for family in ("elastic", "jpeg_linf"):
        eps = PROTOCOL_STRENGTHS[family][0]
        assert unforeseen_attack(family, eps, 200).step_size == pytest.approx(eps / math.sqrt(200))
    assert unforeseen_attack("elastic", 0.25, 50, step_size=0.01).step_size == 0.01


@pytest.mark.parametrize(
    "family,kwargs",
    [
        ("fog", dict(eps=-1.0)),
        ("fog", dict(eps=float("nan"))),
        ("snow", dict(eps=0.1, steps=-1)),
        ("gabor", dict(eps=6.25, step_size=0.0)),
        ("elastic", dict(eps=0.1, bn_mode="batch")),
        ("jpeg_l1", dict(eps=2.0, step_size=1.5)),
        ("gabor", dict(eps=6.25, kernel_size=4)),
    ],
)
def test_bad_hyperparameters_fail_at_construction(family, kwargs):
    with pytest.raises(ConfigError):
        ATTACKS.create(family, **kwargs)


def test_a_projection_bug_is_caught(monkeypatch):
    attack = unforeseen_attack("jpeg_linf", 0.03125, 2)
    monkeypatch.setattr(attack, "ascend", lambda v, grad, context, it: v + 1.0)
    with pytest.raises(RuntimeError, match="over their budget"):
        attack.perturb(_tiny_net().eval(), torch.rand(2, 3, 32, 32), torch.zeros(2).long())


def test_an_image_outside_0_1_is_caught(monkeypatch):
    attack = unforeseen_attack("fog", 128, 1)
    monkeypatch.setattr(attack, "render", lambda x, v, context: x * 2 - 0.5 + 0 * v.sum())
    with pytest.raises(RuntimeError, match="not finite and inside \\[0, 1\\]"):
        attack.perturb(_Constant(), torch.rand(2, 3, 32, 32), torch.zeros(2).long())


def test_attack_restores_mode_and_leaves_batchnorm_and_input_alone():
    model = _tiny_net().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(4, 3, 32, 32)
    x_before = x.clone()
    unforeseen_attack("fog", 128, 2).perturb(model, x, torch.zeros(4).long())
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(x, x_before)
    with model_mode(model, False):
        assert not model.training


@pytest.mark.parametrize("size", [(32, 32), (30, 20)])
def test_jpeg_codec_round_trip_is_exact_for_chroma_smooth_images(size):
    h, w = size
    # Chroma constant on 2 x 2 blocks: 4:2:0 loses nothing, so decode(encode(x)) = x.
    grey = torch.rand(2, 1, h, w)
    tint = F.interpolate(torch.rand(2, 3, (h + 1) // 2, (w + 1) // 2), scale_factor=2)
    x = (0.6 * grey + 0.4 * tint[:, :, :h, :w]).clamp(0, 1)
    codec = jpeg_codec(h, w, x.device)
    assert codec.decode(codec.encode(x)).sub(x).abs().max() < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_odd_sizes_work(family):
    x = torch.rand(2, 3, 30, 26)
    out = unforeseen_attack(family, PROTOCOL_STRENGTHS[family][1], 1).perturb(
        _Constant(), x, torch.zeros(2).long()
    )
    assert out.shape == x.shape and torch.isfinite(out).all()
