import json

import pytest
import torch

from robench.errors import CheckpointError
from robench.models import create
from robench.runs import checkpoint as ckpt


def _save(tmp_path, model, **meta):
    stem = tmp_path / "ckpt"
    meta = {"architecture": model.arch, "num_classes": model.num_classes, "epoch": 1, **meta}
    ckpt.save_checkpoint(stem, ckpt.model_tensors(model), meta)
    return stem


def test_round_trip_restores_every_tensor(tmp_path):
    model = create("preact_tiny")
    with torch.no_grad():
        model.head.fc.bias.add_(1.0)
        model.trunk.stem.weight.mul_(2.0)
    model(torch.rand(4, 3, 32, 32))  # update BN running stats
    stem = _save(tmp_path, model, scenario="P1F4")
    loaded, meta = ckpt.load_model_checkpoint(stem)
    assert meta["scenario"] == "P1F4" and meta["versions"]["robench"] and meta["git_revision"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_wrong_architecture_fails_loudly(tmp_path):
    stem = _save(tmp_path, create("preact_tiny"))
    tensors, meta = ckpt.load_checkpoint(stem)
    meta["architecture"] = "preact_small"
    ckpt.save_checkpoint(stem, tensors, meta)
    with pytest.raises(CheckpointError, match="shape"):
        ckpt.load_model_checkpoint(stem)


def test_missing_and_unexpected_keys_fail(tmp_path):
    model = create("preact_tiny")
    tensors = ckpt.model_tensors(model)
    tensors.pop("model.head.fc.weight")
    with pytest.raises(CheckpointError, match="missing"):
        ckpt.load_model_tensors(create("preact_tiny"), tensors, "x")
    prefixed = {"model.module." + k[6:]: v for k, v in ckpt.model_tensors(model).items()}
    with pytest.raises(CheckpointError, match="missing"):
        ckpt.load_model_tensors(create("preact_tiny"), prefixed, "x")


def test_truncated_file_is_a_checkpoint_error(tmp_path):
    stem = _save(tmp_path, create("preact_tiny"))
    weights = stem.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        ckpt.load_model_checkpoint(stem)


def test_pickle_is_not_a_checkpoint(tmp_path):
    stem = tmp_path / "evil"
    torch.save({"state_dict": create("preact_tiny").state_dict()}, stem.with_suffix(".safetensors"))
    stem.with_suffix(".json").write_text(json.dumps({"format": ckpt.FORMAT}))
    with pytest.raises(CheckpointError):
        ckpt.load_model_checkpoint(stem)


def test_optimizer_momentum_round_trips(tmp_path):
    model = create("preact_tiny")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.rand(4, 3, 32, 32)).sum().backward()
    opt.step()
    tensors = ckpt.optimizer_tensors(opt, model)
    assert len(tensors) == len(list(model.parameters()))
    model2 = create("preact_tiny")
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    ckpt.load_optimizer_tensors(opt2, model2, tensors)
    for p, p2 in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(opt.state[p]["momentum_buffer"], opt2.state[p2]["momentum_buffer"])


def test_checkpoints_are_as_readable_as_other_files(tmp_path):
    import os

    stem = _save(tmp_path, create("preact_tiny"))
    umask = os.umask(0)
    os.umask(umask)
    for path in (stem.with_suffix(".safetensors"), stem.with_suffix(".json")):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask
