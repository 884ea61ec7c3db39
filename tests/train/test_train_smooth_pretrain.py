"""Random-smoothing pretraining (PS, the paper's Table 8): Gaussian noise in place of PGD."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import train_env

from robench.attacks import PGD
from robench.config import PretrainSpec, load_suite
from robench.config.typed import build
from robench.errors import ConfigError
from robench.pretext.rotation import Rotation
from robench.runs import checkpoint as ckpt
from robench.train.lifecycle import PRETRAIN_FOLDER
from robench.train.pretrain import pretrain_run

from synthetic import make_image_folder

SUITE = """
[protocol]
data = "imagefolder"
model = "preact_tiny"
epochs = 1
[pretrain_protocol]
epochs = 1
batch_size = 16
train_subset = 32
val_subset = 16
[pretrain_protocol.task_options.selfie]
num_layers = 1
num_heads = 4
ffn_dim = 32
[runs.rot-PSF4]
pretrain = "smooth:rotation"
finetune = "F4"
[runs.rot-PSF2]
pretrain = "smooth:rotation"
finetune = "F2"
[runs.jig-PSF4]
pretrain = "smooth:jigsaw"
finetune = "F4"
[runs.selfie-PSF4]
pretrain = "smooth:selfie"
finetune = "F4"
[runs.rot-P2F4]
pretrain = "std:rotation"
finetune = "F4"
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"), train_per_class=4)


def _load(tmp_path, text=SUITE):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return load_suite(path)


def test_smooth_runs_are_ps_scenarios_with_sigma_in_their_config(tmp_path):
    suite = _load(tmp_path)
    run = suite.runs["rot-PSF4"]
    assert (run.scenario, suite.runs["rot-PSF2"].scenario, run.pretext) == (
        "PSF4",
        "PSF2",
        "rotation",
    )
    assert suite.runs["rot-P2F4"].scenario == "P2F4"
    spec = run.pretraining
    assert (spec.name, spec.mode, spec.smoothing, spec.adversarial) == (
        "smooth-rotation",
        "smooth",
        True,
        False,
    )
    assert spec.protocol.smoothing_sigma == 0.25
    assert spec.to_dict()["protocol"]["smoothing_sigma"] == 0.25
    # A record written before the smoothing and ensemble keys existed (they were left out of
    # other runs' records then) reads back as the same typed spec: the missing keys default.
    std = suite.runs["rot-P2F4"].pretraining
    old = std.to_dict()
    for key in ("smoothing_sigma", "diversity", "diversity_ridge", "ensemble_tasks"):
        del old["protocol"][key]
    assert build(PretrainSpec, old, "record") == std
    assert build(PretrainSpec, std.to_dict(), "record") == std
    custom = _load(
        tmp_path, SUITE.replace("val_subset = 16", "val_subset = 16\nsmoothing_sigma = 0.5")
    )
    assert custom.runs["jig-PSF4"].pretraining.protocol.smoothing_sigma == 0.5
    for sigma in ("0.0", "-0.25"):
        with pytest.raises(ConfigError, match="smoothing_sigma must be > 0"):
            _load(
                tmp_path,
                SUITE.replace("val_subset = 16", f"val_subset = 16\nsmoothing_sigma = {sigma}"),
            )
    with pytest.raises(ConfigError, match="random smoothing pretrains one task"):
        _load(tmp_path, SUITE + '[runs.ens]\npretrain = "smooth:ensemble"\nfinetune = "F4"\n')
    with pytest.raises(ConfigError, match="smooth:<task>"):
        _load(tmp_path, SUITE.replace('"smooth:jigsaw"', '"noisy:jigsaw"'))


@pytest.fixture(scope="module")
def smoothed(tmp_path_factory, folder):
    """Every smooth pretraining, with every attack made unusable, and the noise recorded."""
    suite = _load(tmp_path_factory.mktemp("suite"))
    out = tmp_path_factory.mktemp("runs")
    env = train_env(folder)
    recorded: list[torch.Tensor] = []
    real_logits = Rotation.logits

    def record(self, backbone, inputs, batch):
        if self.training:
            recorded.append(inputs.detach().clone())
        return real_logits(self, backbone, inputs, batch)

    def no_attack(*args, **kwargs):
        raise AssertionError("smooth pretraining built or ran an attack")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("robench.train.pretrain.build_attack", no_attack)
        mp.setattr(PGD, "perturb", no_attack)
        mp.setattr(Rotation, "logits", record)
        for name in ("rot-PSF4", "jig-PSF4", "selfie-PSF4"):
            pretrain_run(suite.runs[name].pretraining, out / PRETRAIN_FOLDER, env)
    pretrain_run(suite.runs["rot-P2F4"].pretraining, out / PRETRAIN_FOLDER, env)
    return out / PRETRAIN_FOLDER, recorded


@pytest.mark.slow
def test_smooth_pretraining_trains_every_task_without_an_attack(smoothed):
    out, _ = smoothed
    for task in ("rotation", "jigsaw", "selfie"):
        run = out / f"smooth-{task}"
        _, meta = ckpt.load_checkpoint(run / "trunk")
        assert (meta["pretext"], meta["mode"], meta["scenario"]) == (task, "smooth", "PS")
        assert meta["smoothing_sigma"] == 0.25
        (record,) = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert record["train_loss_noisy"] > 0 and "train_loss_adv" not in record
        config = json.loads((run / "config.json").read_text())
        assert config["pretraining"]["protocol"]["smoothing_sigma"] == 0.25


@pytest.mark.slow
def test_smooth_pretraining_differs_from_standard_with_the_same_seed(smoothed):
    out, _ = smoothed
    smooth, _ = ckpt.load_checkpoint(out / "smooth-rotation" / "trunk")
    std, _ = ckpt.load_checkpoint(out / "std-rotation" / "trunk")
    assert smooth.keys() == std.keys()
    assert any(not torch.equal(smooth[k], std[k]) for k in smooth)


@pytest.mark.slow
def test_the_noise_is_gaussian_with_sigma_and_unclipped(smoothed):
    _, recorded = smoothed
    assert len(recorded) == 4  # 2 steps x (clean, noisy) forward passes of Rotation
    for clean, noisy in zip(recorded[::2], recorded[1::2], strict=True):
        noise = noisy - clean
        assert float(noise.std()) == pytest.approx(0.25, abs=0.01)
        assert abs(float(noise.mean())) < 0.01
        assert clean.min() >= 0 and clean.max() <= 1
        assert noisy.min() < 0 and noisy.max() > 1  # not clipped: Cohen et al.'s distribution
