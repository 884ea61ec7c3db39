"""What every registered model promises, for each name in `MODELS` (README: "registry; PreAct
ResNet-50v2 / ResNet-18 / tiny with `trunk` (stem + stages 1-3) and `head`").

Each maps (N, 3, 32, 32) images in [0, 1] to (N, num_classes) finite logits, is
normalise -> trunk -> head with trunk = stem + stages 1-3 (theta_p, what pretraining learns
and fine-tuning inherits) and head = stage 4 + classifier, the two partitioning the
parameters, and is deterministic in eval mode. One model per name for the module (the
ResNet-50v2 takes a second to build); every test sets the mode it needs.
"""

from __future__ import annotations

import pytest
import torch

from robench.models import MODELS, Classifier, create

NUM_CLASSES = 7  # not CIFAR-10's 10, so a hard-coded class count shows


@pytest.fixture(scope="module", params=MODELS.names())
def model(request) -> Classifier:
    torch.manual_seed(0)
    return create(request.param, num_classes=NUM_CLASSES)


def _images(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def test_every_model_maps_unit_images_to_logits(model):
    model.eval()
    x = _images()
    logits = model(x)
    assert isinstance(model, Classifier) and model.arch in MODELS
    assert logits.shape == (2, NUM_CLASSES) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert model.num_classes == NUM_CLASSES
    torch.testing.assert_close(model.head(model.features(x)), logits, rtol=0, atol=0)


@torch.no_grad()
def test_trunk_is_stem_and_stages_1_to_3_and_head_is_stage_4_and_classifier(model):
    assert [name for name, _ in model.trunk.named_children()] == [
        "stem",
        "stage1",
        "stage2",
        "stage3",
    ]
    assert {"stage4", "fc"} <= {name for name, _ in model.head.named_children()}
    assert model.head.fc.out_features == NUM_CLASSES
    model.eval()
    features = model.features(_images())
    assert features.shape == (2, model.trunk_channels, 8, 8)  # theta_p's output
    normalised = (_images() - model.normalize.mean) / model.normalize.std
    torch.testing.assert_close(model.trunk(normalised), features, rtol=0, atol=0)


def test_trunk_and_head_partition_the_parameters(model):
    trunk = {id(p) for p in model.trunk.parameters()}
    head = {id(p) for p in model.head.parameters()}
    assert trunk and head and not trunk & head
    assert trunk | head == {id(p) for p in model.parameters()}


@torch.no_grad()
def test_eval_mode_is_deterministic_and_leaves_the_state_alone(model):
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = _images()
    first, second = model(x), model(x)
    alone = model(x[1:2])
    assert torch.equal(first, second)
    torch.testing.assert_close(alone, first[1:2])  # no batch statistics in eval mode
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
