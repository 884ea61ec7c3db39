"""Fine-tuning from an exported trunk: `pretrain = "trunk:PATH_OR_ID"`, checked key by key."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import quiet_session, suite_toml

from robench.artifacts import export_run
from robench.config import load_suite
from robench.errors import CheckpointError, ConfigError
from robench.runs import checkpoint as ckpt
from robench.runs.run_dir import RunDir
from robench.train.lifecycle import PRETRAIN_FOLDER
from robench.workflow import train

from synthetic import make_image_folder

pytestmark = pytest.mark.slow  # trains a pretraining and two fine-tunings

PRETRAIN = {"epochs": 1, "batch_size": 40, "val_subset": 20, "attack": {"steps": 1}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An adversarial rotation pretraining, exported; and the data it was trained on."""
    root = tmp_path_factory.mktemp("trunk")
    data = make_image_folder(root / "data", train_per_class=8, test_per_class=4)
    (root / "pre.toml").write_text(
        suite_toml(
            pretrain_protocol=PRETRAIN,
            runs={"rot-P3F4": {"pretrain": "adv:rotation", "finetune": "F4"}},
        )
    )
    train(quiet_session(str(data)), load_suite(root / "pre.toml"), root / "runs", None)
    folder = export_run(root / "runs" / PRETRAIN_FOLDER / "adv-rotation", root / "artifact")
    return root, data, folder


def _suite(root, source, finetune="F1", **protocol):
    path = root / f"ft-{finetune}.toml"
    path.write_text(
        suite_toml(runs={"from-trunk": {"pretrain": f"trunk:{source}", "finetune": finetune}},
                   **protocol)
    )  # fmt: skip
    return path


def test_a_pretraining_exports_its_trunk(exported):
    _, _, folder = exported
    config = json.loads((folder / "config.json").read_text())
    assert config["trunk_only"] and config["scenario"] == "P3" and config["pretext"] == "rotation"
    tensors, _ = ckpt.load_checkpoint(folder / "model")
    assert tensors and all(k.startswith("model.trunk.") for k in tensors)
    assert "adversarial self-supervised pretraining" in (folder / "README.md").read_text()


def test_a_frozen_fine_tuning_keeps_the_exported_trunk_exactly(exported, tmp_path):
    root, data, folder = exported
    # A relative folder is taken from the suite file's folder.
    suite = load_suite(_suite(root, "artifact"))
    spec = suite.runs["from-trunk"]
    assert (spec.pretext, spec.scenario, spec.is_table3_cell) == ("rotation", "P3F1", False)
    train(quiet_session(str(data)), suite, tmp_path / "runs", None)
    run = RunDir(tmp_path / "runs" / "from-trunk")
    record = json.loads(run.config.read_text())
    assert record["run"]["trunk"]["source"] == str(folder.resolve())
    assert record["run"]["scenario"] == "P3F1"
    given, _ = ckpt.load_checkpoint(folder / "model")
    trained, _ = ckpt.load_checkpoint(run.checkpoint("last"))
    for key, value in given.items():  # F1 freezes the trunk: bit-identical after training
        assert torch.equal(trained[key], value), key
    assert any(not k.startswith("model.trunk.") for k in trained)  # the head was trained


def test_a_trunk_from_the_hub_cache_loads_without_the_network(exported, tmp_path, monkeypatch):
    root, _, folder = exported
    cache = tmp_path / "hub"
    snapshot = cache / "models--org--rot-trunk" / "snapshots" / ("ab" * 20)
    shutil.copytree(folder, snapshot)
    (cache / "models--org--rot-trunk" / "refs").mkdir()
    (cache / "models--org--rot-trunk" / "refs" / "main").write_text("ab" * 20)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    spec = load_suite(_suite(root, "hf-hub:org/rot-trunk")).runs["from-trunk"]
    assert spec.trunk.source == "hf-hub:org/rot-trunk" and spec.scenario == "P3F1"


def test_a_wrong_trunk_fails_when_the_suite_is_read(exported, tmp_path):
    root, _, folder = exported
    with pytest.raises(ConfigError, match="not an exported robench model"):
        load_suite(_suite(root, tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="cannot inherit the trunk"):
        load_suite(_suite(root, folder, model="preact_resnet18"))
    with pytest.raises(ConfigError, match="needs a folder"):
        load_suite(_suite(root, ""))


def test_a_trunk_changed_after_the_suite_was_read_is_refused(exported, tmp_path):
    root, data, folder = exported
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    suite = load_suite(_suite(root, copy, finetune="F3"))
    tensors, meta = ckpt.load_checkpoint(copy / "model")
    first = next(iter(tensors))
    tensors[first] = tensors[first] + 1.0
    from robench.artifacts.export import _write_weights

    _write_weights(copy / "model.safetensors", tensors, meta)
    with pytest.raises(CheckpointError, match="SHA-256 changed"):
        train(quiet_session(str(data)), suite, tmp_path / "runs", None)
