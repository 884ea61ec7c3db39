"""`--log tensorboard`: event files in the run directory that TensorBoard's own reader reads
back with the expected tags and values; a missing extra or an unknown logger is one line."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import pytest
from helpers import assert_one_line_error, run_cli, suite_toml

from robench.errors import RobenchError
from robench.train.loggers import check_loggers

from synthetic import make_image_folder

pytestmark = pytest.mark.slow

SUITE = suite_toml(epochs=2, batch_size=20, runs={"P1F4": {"finetune": "F4"}})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("tensorboard", reason="pip install 'robench[tensorboard]'")
    root = tmp_path_factory.mktemp("tb")
    data = make_image_folder(root / "data", train_per_class=8, test_per_class=4)
    (root / "suite.toml").write_text(SUITE)
    return root, data


def _events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return accumulator


def test_a_run_with_log_tensorboard_writes_what_tensorboard_reads(trained, monkeypatch, capsys):
    root, data = trained
    out = root / "runs"
    code, _, err = run_cli(monkeypatch, capsys, "train", str(root / "suite.toml"), "--out",
                           str(out), "--data-dir", str(data), "--device", "cpu",
                           "--log", "tensorboard")  # fmt: skip
    assert code == 0, err
    run = out / "P1F4"
    events = _events(run / "tensorboard")
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/img_per_s", "epoch/val_ta", "epoch/val_ra"} <= tags
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    val_ta = [e.value for e in events.Scalars("epoch/val_ta")]
    assert val_ta == pytest.approx([line["val_ta"] for line in lines])  # the same numbers
    steps = [e.step for e in events.Scalars("train/loss")]
    assert steps == sorted(steps) and len(steps) >= 2  # per step (at the host syncs), in order
    assert events.Scalars("train/lr")[0].value == pytest.approx(lines[0]["lr"])
    # one step count: the last step of epoch 2 is twice the last of epoch 1
    epoch_steps = [e.step for e in events.Scalars("epoch/val_ta")]
    assert epoch_steps[1] == 2 * epoch_steps[0] and max(steps) == epoch_steps[1]


def test_a_missing_logger_package_is_one_line_naming_the_pip_command(monkeypatch, capsys, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wandb" else real(name, *a))  # fmt: skip
    with pytest.raises(RobenchError, match=r"pip install 'robench\[wandb\]'"):
        check_loggers(["wandb"])
    (tmp_path / "suite.toml").write_text(SUITE)
    code, _, err = run_cli(monkeypatch, capsys, "train", str(tmp_path / "suite.toml"),
                           "--out", str(tmp_path / "o"), "--log", "wandb")  # fmt: skip
    assert_one_line_error(code, err, "pip install 'robench[wandb]'")
    assert not (tmp_path / "o").exists()  # refused before anything was written
    code, _, err = run_cli(monkeypatch, capsys, "train", str(tmp_path / "suite.toml"),
                           "--out", str(tmp_path / "o"), "--log", "mlflow")  # fmt: skip
    assert_one_line_error(code, err, "choose from tensorboard, wandb")


class Interrupted(Exception):
    pass


def test_a_resumed_run_logs_each_step_once(trained, tmp_path, monkeypatch):
    """Killed at step 3 of epoch 1, after logging it, with its last checkpoint at step 2:
    resumed, it logs step 3 again, and TensorBoard drops what the dead process logged from
    there (purge_step), so each step is there once; the epochs' values are metrics.jsonl's."""
    from helpers import train_env

    from robench.config import load_suite
    from robench.train import loop as loop_mod
    from robench.train.finetune import train_run

    root, data = trained
    suite = load_suite(root / "suite.toml")
    env = replace(train_env(data, suite, checkpoint_every=2), log=("tensorboard",))
    monkeypatch.setattr(loop_mod, "SYNC_EVERY", 1)  # a logged step between checkpoints
    real = loop_mod.run_epoch

    def dying(*args, on_sync=None, **kwargs):
        def log_then_maybe_die(step, *rest):
            on_sync(step, *rest)
            if kwargs["epoch"] == 1 and step == 3:
                raise Interrupted

        return real(*args, on_sync=log_then_maybe_die, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr("robench.train.finetune.run_epoch", dying)
        with pytest.raises(Interrupted):
            train_run(suite.runs["P1F4"], tmp_path, env)
    train_run(suite.runs["P1F4"], tmp_path, env)
    events = _events(tmp_path / "P1F4" / "tensorboard")
    steps = [e.step for e in events.Scalars("train/loss")]
    assert steps == sorted(set(steps)) and 3 in steps, steps  # once each, in order
    lines = [json.loads(x) for x in (tmp_path / "P1F4" / "metrics.jsonl").read_text().splitlines()]
    assert [e.value for e in events.Scalars("epoch/val_ta")] == pytest.approx(
        [line["val_ta"] for line in lines]
    )


def test_log_wandb_keeps_an_offline_run_in_the_run_directory(trained, tmp_path, monkeypatch,
                                                             capsys):  # fmt: skip
    pytest.importorskip("wandb", reason="pip install 'robench[wandb]'")
    root, data = trained
    monkeypatch.setenv("WANDB_SILENT", "true")
    code, _, err = run_cli(monkeypatch, capsys, "train", str(root / "suite.toml"), "--out",
                           str(tmp_path), "--data-dir", str(data), "--device", "cpu",
                           "--log", "wandb")  # fmt: skip
    assert code == 0, err
    (offline,) = (tmp_path / "P1F4" / "wandb").glob("offline-run-*/run-*.wandb")
    recorded = offline.read_bytes()  # the run's records (protobuf): the keys are in there
    assert all(key in recorded for key in (b"train/loss", b"epoch/val_ta", b"epoch/val_ra"))
