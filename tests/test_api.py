"""robench from Python, used the way a notebook uses it: evaluate, attack, load."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
import torch
from helpers import suite_toml
from torch import nn

import robench
from robench.errors import ConfigError, RobenchError
from robench.stats import wilson

from synthetic import make_image_folder


class ColourNet(nn.Module):
    """A fixed, deterministic classifier of the synthetic folder's colour classes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("api"), train_per_class=2, test_per_class=4)


def _evaluate(model, folder, **kwargs):
    return robench.evaluate(
        model, n=40, data="imagefolder", data_dir=folder, device="cpu", cross_check_images=8,
        steps=3, **kwargs,
    )  # fmt: skip


def test_evaluate_an_in_memory_model(folder):
    result = _evaluate(ColourNet(), folder)
    row = result.rows.iloc[0]
    assert row["suite"] == "pgd20" and row["n_eval"] == 40 and row["overrides"] == "steps=3"
    assert row["model_id"].startswith("weights:") and row["precision"] == "fp32"
    robust = result.flags["pgd"].measured
    assert len(robust) == 40 and row["ra"] == pytest.approx(100 * robust.mean())
    assert (row["ra_lo"], row["ra_hi"]) == pytest.approx(wilson(int(robust.sum()), 40))
    interval = result.interval("pgd")
    assert (interval.lo, interval.hi) == pytest.approx((row["ra_lo"], row["ra_hi"]))
    assert result.store is None
    with pytest.raises(ConfigError, match="no evaluation 'fog'"):
        result.interval("fog")


def test_store_keeps_rows_and_resumable_flags(folder, tmp_path):
    first = _evaluate(ColourNet(), folder, store=tmp_path / "boards")
    board = pd.read_csv(tmp_path / "boards" / "pgd20.csv")
    assert len(board) == 1 and board["ra"].iloc[0] == first.rows["ra"].iloc[0]
    flag_files = sorted((tmp_path / "boards" / ".eval-state").rglob("*.npz"))
    assert flag_files
    mtimes = [p.stat().st_mtime_ns for p in flag_files]
    again = _evaluate(ColourNet(), folder, store=tmp_path / "boards")  # the same weights
    assert again.rows["ra"].iloc[0] == first.rows["ra"].iloc[0]
    assert [p.stat().st_mtime_ns for p in flag_files] == mtimes  # read back, not recomputed
    assert len(pd.read_csv(tmp_path / "boards" / "pgd20.csv")) == 1  # its own row replaced
    # the store's report, as `robench report DIR` writes it
    page = robench.write_report(tmp_path / "boards")
    assert page == tmp_path / "boards" / "report.html"
    text = page.read_text()
    assert '<section id="summary">' in text and str(first.rows["run"].iloc[0]) in text
    with pytest.raises(RobenchError, match="no boards"):
        robench.write_report(tmp_path)


def test_the_cli_sanity_checks_apply(folder):
    class Noisy(ColourNet):
        def forward(self, x):
            return super().forward(x) + torch.randn(len(x), 10)

    with pytest.raises(RobenchError, match="random"):
        _evaluate(Noisy(), folder)
    with pytest.raises(ConfigError, match=r"torch\.nn\.Module"):
        robench.evaluate(lambda x: x, n=4)
    with pytest.raises(ConfigError, match="unknown setting"):
        _evaluate(ColourNet(), folder, epsilon=0.1)
    with pytest.raises(RobenchError):
        robench.evaluate(ColourNet(), suite="nope")


def test_attack_returns_examples_in_the_ball():
    model, x, y = ColourNet(), torch.rand(6, 3, 32, 32), torch.arange(6)
    x_adv = robench.attack(model, x, y, "pgd", eps=4 / 255, steps=5, step_size=1 / 255)
    assert x_adv.shape == x.shape and float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
    assert float((x_adv - x).abs().max()) <= 4 / 255 + 1e-6
    again = robench.attack(model, x, y, "pgd", eps=4 / 255, steps=5, step_size=1 / 255)
    assert torch.equal(x_adv, again)  # seeded
    assert model.training  # the attack ran in eval mode and gave the mode back
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        robench.attack(model, x * 255, y, "pgd", eps=4 / 255)
    with pytest.raises(RobenchError):
        robench.attack(model, x, y, "no-such-attack")


@pytest.mark.slow
def test_load_a_trained_run(tmp_path, folder, monkeypatch):
    (tmp_path / "suite.toml").write_text(suite_toml(runs={"P1F3": {"finetune": "F3"}}))
    from robench.cli import main

    argv = ["robench", "train", str(tmp_path / "suite.toml"), "--out", str(tmp_path / "runs")]
    monkeypatch.setattr(sys, "argv", [*argv, "--data-dir", str(folder), "--device", "cpu"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code in (0, None)
    model = robench.load(tmp_path / "runs" / "P1F3")
    assert not model.training
    x = torch.rand(2, 3, 32, 32)
    assert model(x).shape == (2, 10)
    with pytest.raises(RobenchError):
        robench.load(tmp_path / "missing")


def test_a_torchattacks_attack_through_evaluate(folder):
    result = robench.evaluate(
        ColourNet(), "torchattacks", n=40, data="imagefolder", data_dir=folder, device="cpu",
        attack="PGD", attack_options={"eps": 8 / 255, "alpha": 2 / 255, "steps": 3},
    )  # fmt: skip
    row = result.rows.iloc[0]
    assert row["attack"] == "torchattacks-PGD" and row["eps"] == "8/255" and row["steps"] == 3
    assert json.loads(row["attack_options"]) == {"alpha": 2 / 255, "eps": 8 / 255, "steps": 3}
    assert row["ra"] == pytest.approx(100 * result.flags["torchattacks"].measured.mean())
    assert row["ra"] <= row["ta"] and row["torchattacks_version"]
    with pytest.raises(ConfigError, match="needs --attack"):
        robench.evaluate(ColourNet(), "torchattacks", n=4, data="imagefolder", data_dir=folder)


def test_cli_refuses_a_bridge_without_its_suite(monkeypatch, capsys, tmp_path):
    from helpers import assert_one_line_error, run_cli

    code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path), "--attack", "CW")
    assert_one_line_error(code, err, "go with --suite torchattacks")
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path), "--suite", "torchattacks")
    assert_one_line_error(code, err, "needs --attack NAME")
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path), "--suite", "torchattacks",
                           "--attack", "CW", "--attack-option", "steps")  # fmt: skip
    assert_one_line_error(code, err, "must look like KEY=VALUE")


def test_a_store_in_use_by_another_evaluation_is_refused(folder, tmp_path):
    from robench.eval.own_targets import memory_target
    from robench.runs.lock import folder_lock

    store = tmp_path / "boards"
    target = memory_target(ColourNet(), data="imagefolder", data_dir=folder, n=40,
                           state_root=store / ".eval-state")  # fmt: skip
    with folder_lock(target.flag_dir, "the flag folder"), pytest.raises(RobenchError, match="PID"):
        _evaluate(ColourNet(), folder, store=store)
    assert not (store / "pgd20.csv").exists()  # nothing half-written
    assert len(_evaluate(ColourNet(), folder, store=store).rows) == 1  # free again: it runs
