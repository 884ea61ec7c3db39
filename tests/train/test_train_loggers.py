"""`--log tensorboard`: event files in the run directory that TensorBoard's own reader reads
back with the expected tags and values; a missing extra or an unknown logger is one line."""

from __future__ import annotations

import importlib.util
import json

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
