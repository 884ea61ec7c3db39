import json

import pytest
import torch
from helpers import suite_toml, train_env

from robench.config import load_suite
from robench.config.suite import SUITES_DIR
from robench.data import make_splits
from robench.errors import ConfigError
from robench.runs import checkpoint as ckpt
from robench.runs.run_dir import RunDir
from robench.train import finetune as finetune_mod
from robench.train import steps as steps_mod
from robench.train.finetune import train_run
from robench.train.loop import DivergenceError
from robench.train.schedule import lr_at_epoch

from synthetic import make_image_folder

SUITE = suite_toml(
    epochs=3,
    batch_size=32,
    lr=0.05,
    val_ra_subset=20,
    eval_n=50,
    eval_batch_size=50,
    train_attack={"steps": 2},
    val_attack={"steps": 2},
    runs={"st": {"finetune": "F3"}, "at": {"finetune": "F4"}},
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    return load_suite(path)


def _train(suite, name, out, folder):
    return train_run(suite.runs[name], out, train_env(folder, suite))


def test_paper_schedule_decays_after_epochs_30_and_50():
    p = load_suite(SUITES_DIR / "paper.toml").protocol
    assert [lr_at_epoch(p, e) for e in (1, 30, 31, 50, 51, 100)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )


@pytest.mark.slow
def test_run_directory_holds_config_metrics_and_checkpoints(suite, folder, tmp_path):
    result = _train(suite, "at", tmp_path, folder)
    rd = RunDir(tmp_path / "at")
    config = json.loads(rd.config.read_text())
    assert config["run"]["scenario"] == "P1F4" and config["data"]["train"] == 360
    lines = [json.loads(line) for line in rd.metrics.read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert all(r["val_n"] == 40 and r["val_ra_n"] == 20 for r in lines)
    # The last epoch's validation, recomputed here from the last checkpoint: TA on the 40
    # validation images, the RA subset's clean accuracy on the first 20 of them; and the
    # validation attack takes images from that subset (RA below its clean accuracy).
    p = suite.runs["at"].protocol
    val = make_splits(p.data, folder, val_fraction=p.val_fraction, seed=p.seed).val
    model, _ = ckpt.load_model_checkpoint(rd.checkpoint("last"))
    with torch.no_grad():
        x = torch.from_numpy(val.images).permute(0, 3, 1, 2).float() / 255
        right = model.eval()(x).argmax(1) == torch.from_numpy(val.labels)
    assert round(lines[-1]["val_ta"] * 40 / 100) == int(right.sum())
    assert round(lines[-1]["val_ra_clean"] * 20 / 100) == int(right[:20].sum())
    assert all(r["val_ra"] >= 0 for r in lines)
    assert any(r["val_ra"] < r["val_ra_clean"] for r in lines)
    assert result["epochs_to_best"] == max(lines, key=lambda r: r["val_ta"])["epoch"]
    _, meta = ckpt.load_model_checkpoint(rd.checkpoint("best_ta"))
    assert meta["epoch"] == result["epochs_to_best"] and meta["scenario"] == "P1F4"
    assert meta["architecture"] == "preact_tiny" and meta["attack_bn_mode"] == "eval"
    assert lines[-1]["val_ta"] > 30  # the synthetic classes are learnable


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted(suite, folder, tmp_path, monkeypatch):
    _train(suite, "at", tmp_path / "straight", folder)

    original = finetune_mod.FinetuneJob.run_epoch

    def crash_in_epoch_3(self, epoch, *args):
        if epoch == 3:
            raise KeyboardInterrupt
        return original(self, epoch, *args)

    monkeypatch.setattr(finetune_mod.FinetuneJob, "run_epoch", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        _train(suite, "at", tmp_path / "resumed", folder)
    assert not RunDir(tmp_path / "resumed" / "at").is_finished()
    monkeypatch.setattr(finetune_mod.FinetuneJob, "run_epoch", original)
    _train(suite, "at", tmp_path / "resumed", folder)

    a, _ = ckpt.load_checkpoint(RunDir(tmp_path / "straight" / "at").checkpoint("last"))
    b, _ = ckpt.load_checkpoint(RunDir(tmp_path / "resumed" / "at").checkpoint("last"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    metrics = [
        [json.loads(x)["val_ta"] for x in (p / "at" / "metrics.jsonl").read_text().splitlines()]
        for p in (tmp_path / "straight", tmp_path / "resumed")
    ]
    assert metrics[0] == metrics[1]


@pytest.mark.slow
def test_finished_run_is_skipped_and_a_changed_one_refused(suite, folder, tmp_path, monkeypatch):
    _train(suite, "st", tmp_path, folder)
    monkeypatch.setattr(finetune_mod, "make_splits", lambda *a, **k: pytest.fail("retrained"))
    _train(suite, "st", tmp_path, folder)  # skipped: no data loaded
    monkeypatch.undo()
    changed = SUITE.replace("epochs = 3", "epochs = 4")
    path = tmp_path / "changed.toml"
    path.write_text(changed)
    with pytest.raises(ConfigError, match="different configuration"):
        _train(load_suite(path), "st", tmp_path, folder)


@pytest.mark.slow
def test_divergence_stops_with_epoch_and_step(suite, folder, tmp_path, monkeypatch):
    real_ce = torch.nn.functional.cross_entropy
    monkeypatch.setattr(
        steps_mod.F, "cross_entropy", lambda *a, **k: real_ce(*a, **k) * float("nan")
    )
    with pytest.raises(DivergenceError, match="epoch 1, step 10"):
        _train(suite, "st", tmp_path, folder)
