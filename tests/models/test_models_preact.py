"""The PreAct ResNets themselves (the contract every model keeps is test_models_contract.py)."""

import pytest
import torch

from robench.errors import ConfigError
from robench.models import Classifier, create


def test_resnet50v2_is_the_papers_backbone():
    model = create("preact_resnet50v2")
    stage_depths = [len(getattr(model.trunk, f"stage{i}")) for i in (1, 2, 3)]
    assert stage_depths == [3, 4, 6]
    assert len(model.head.stage4) == 3
    assert model.trunk.stem.kernel_size == (3, 3) and model.trunk.stem.stride == (1, 1)
    assert model.trunk.stem.out_channels == 64
    # theta_p ends in 1024 channels at 8x8; the head ends in 2048 channels.
    assert model.features(torch.rand(1, 3, 32, 32)).shape == (1, 1024, 8, 8)
    assert model.head.fc.in_features == 2048
    n_params = sum(p.numel() for p in model.parameters())
    assert 23.4e6 < n_params < 23.6e6


def test_preact_block_preactivates_before_the_projection_shortcut():
    block = create("preact_resnet50v2").trunk.stage2[0]
    x = torch.randn(2, 256, 16, 16)
    pre = torch.relu(block.bn1.eval()(x))
    block.eval()
    out = block(x)
    inner = block.conv3(torch.relu(block.bn3(block.conv2(torch.relu(block.bn2(block.conv1(pre)))))))
    torch.testing.assert_close(out, inner + block.shortcut(pre))


def test_normalisation_is_a_layer_not_a_weight():
    model = create("preact_tiny")
    assert isinstance(model, Classifier)
    assert not any(k.startswith("normalize") for k in model.state_dict())
    x = torch.rand(1, 3, 32, 32)
    expected = (x - model.normalize.mean) / model.normalize.std
    torch.testing.assert_close(model.normalize(x), expected)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError, match="preact_resnet50v2"):
        create("resnet9000")
