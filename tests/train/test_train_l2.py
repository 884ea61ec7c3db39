"""Adversarial training in the L2 threat model from a suite (`norm = "l2"`), then its L2 board."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import run_cli, suite_toml

from synthetic import make_image_folder

pytestmark = pytest.mark.slow


def test_l2_training_and_l2_evaluation_end_to_end(monkeypatch, capsys, tmp_path):
    data = make_image_folder(tmp_path / "data", train_per_class=8, test_per_class=4)
    l2 = {"eps": "0.5", "step_size": "0.125", "steps": 2, "norm": "l2"}
    suite = suite_toml(train_attack=l2, val_attack=l2, runs={"P1F4": {"finetune": "F4"}})
    (tmp_path / "suite.toml").write_text(suite)
    common = ("--data-dir", str(data), "--device", "cpu")
    code, _, err = run_cli(monkeypatch, capsys, "train", str(tmp_path / "suite.toml"), "--out",
                           str(tmp_path / "runs"), *common)  # fmt: skip
    assert code == 0, err
    record = json.loads((tmp_path / "runs" / "P1F4" / "config.json").read_text())
    assert record["run"]["protocol"]["train_attack"]["norm"] == "l2"
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path / "runs" / "P1F4"),
                           "--suite", "pgd20-l2", "--n", "40", "--cross-check-images", "8",
                           "--leaderboard-dir", str(tmp_path / "boards"), *common)  # fmt: skip
    assert code == 0, err
    row = pd.read_csv(tmp_path / "boards" / "pgd20-l2.csv").iloc[0]
    assert row["norm"] == "l2" and row["attack"] == "pgd-l2" and str(row["eps"]) == "0.5"
    assert row["ra"] <= row["ta"] and row["ra_lo"] <= row["ra"] <= row["ra_hi"]
