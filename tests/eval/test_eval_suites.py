"""`robench eval --suite ...`: suites, resumable flags, external models, ensembles, honesty.

External checks use the two ResNet-20s trained elsewhere (../shared/external) on the exact
CIFAR-10 pixels; the suite mechanics use a tiny model so every suite runs in seconds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchattacks
from helpers import REPO, run_cli
from rich.console import Console
from torch import nn

from robench.attacks.unforeseen import FAMILIES
from robench.corruptions.source import CORRUPTION_NAMES
from robench.data import ArrayDataset
from robench.eval.evaluator import Evaluator
from robench.eval.sanity import EvaluationRefused
from robench.eval.suites import EvalOptions, Overrides
from robench.eval.suites.unforeseen import unforeseen_evaluations
from robench.eval.targets import EvalTarget, SoftmaxEnsemble
from robench.flags import Flags
from robench.leaderboard import validate_board
from robench.leaderboard.board_set import BoardSet
from robench.leaderboard.schema import UNFORESEEN_COLUMNS
from robench.models import create
from robench.runtime import Runtime

CPU = Runtime.select("cpu")
QUIET = Console(quiet=True)
FACTORY = REPO / "tests" / "external_resnet20.py"


def _env(name: str) -> Path:
    value = os.environ.get(name)
    if not value or not Path(value).is_dir():
        pytest.skip(f"set {name}")
    return Path(value)


def _external_args(name: str, n: int) -> list[str]:
    weights = _env("ROBENCH_EXTERNAL") / f"{name}.pth"
    return [
        "eval", "--model", f"{FACTORY}:resnet20", "--weights", str(weights),
        "--data-dir", str(_env("ROBENCH_EXACT")), "--n", str(n), "--device", "cpu",
    ]  # fmt: skip


def _target(model: nn.Module, tmp_path: Path, n: int = 16, name: str = "m") -> EvalTarget:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    return EvalTarget(
        name=name,
        model=model,
        test=ArrayDataset(images, labels, tuple(str(i) for i in range(10))),
        data_info={"dataset": "random", "is_jpeg_copy": False, "content_hash": "r"},
        identity={
            "run": name,
            "pretext": "none",
            "scenario": "external",
            "model": "m",
            "checkpoint": "none",
            "epochs_to_best": None,
            "train_suite": "",
            "train_suite_sha256": "",
            "run_dir": "",
            "model_id": "test:h",
        },
        model_hash="h",
        flag_dir=tmp_path / "flags",
        batch_size=8,
    )


def _kind(protocol: dict) -> str:
    """clean, corruption, or the attack family: pgd, autoattack, unforeseen."""
    if protocol["corruption"] is not None:
        return "corruption"
    if protocol["attack"] is None:
        return "clean"
    name = protocol["attack"]["name"]
    return "unforeseen" if name in FAMILIES else name


def _stored_flags(flag_dir: Path, kind: str) -> dict[str, np.ndarray]:
    """Evaluation name -> the per-example flags `robench eval` stored for it (kind `kind`)."""
    flags = {}
    for sidecar in flag_dir.glob("*.json"):
        info = json.loads(sidecar.read_text())
        if _kind(info["protocol"]) == kind:
            with np.load(sidecar.with_suffix(".npz")) as data:
                flags[info["evaluation"]] = np.asarray(data["flags"], dtype=bool)
    return flags


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return create("preact_tiny", num_classes=10).eval()


# -- external models -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.external
def test_external_model_pgd20_with_overrides_recorded(monkeypatch, capsys, tmp_path):
    boards = tmp_path / "boards"
    args = [*_external_args("resnet20-adv", 32), "--leaderboard-dir", str(boards)]
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    assert run_cli(monkeypatch, capsys, *args, "--eps", "2/255", "--steps", "5")[0] == 0
    board = pd.read_csv(boards / "pgd20.csv", keep_default_na=False)
    assert len(board) == 2 and set(board.pretext) == {"external"}
    default = board[board.overrides == ""].iloc[0]
    weak = board[board.overrides == "eps=2/255;steps=5"].iloc[0]
    assert (weak.eps, weak.steps) == ("2/255", 5)
    assert default.ta > 75 and 5 < default.ra < default.ta
    assert weak.ra > default.ra  # a quarter of the budget leaves more images robust
    assert default["flags"] == ""
    assert validate_board(boards / "pgd20.csv")[1] == []


@pytest.mark.slow
@pytest.mark.external
def test_our_pgd20_agrees_with_torchattacks(exact_test_batch, adversarial_resnet20, tmp_path):
    x, y = exact_test_batch
    n = 100
    target = _target(adversarial_resnet20, tmp_path, n)
    target.test = ArrayDataset(
        (x[:n].permute(0, 2, 3, 1) * 255).round().byte().numpy(), y[:n].numpy(), target.test.classes
    )
    [(_, [row])] = Evaluator(target, CPU, QUIET, EvalOptions(batch_size=100)).run("pgd20")
    attack = torchattacks.PGD(adversarial_resnet20, eps=8 / 255, alpha=2 / 255, steps=20)
    torch.manual_seed(0)
    theirs = (adversarial_resnet20(attack(x[:n], y[:n])).argmax(1) == y[:n]).float().mean() * 100
    assert abs(row["ra"] - float(theirs)) <= 3  # 3 of 100 images: random-start noise


@pytest.mark.slow
@pytest.mark.external
def test_autoattack_is_at_most_pgd20_and_agrees_with_torchattacks(
    exact_test_batch, adversarial_resnet20, tmp_path
):
    x, y = exact_test_batch
    n = 6
    target = _target(adversarial_resnet20, tmp_path, n)
    target.test = ArrayDataset(
        (x[:n].permute(0, 2, 3, 1) * 255).round().byte().numpy(), y[:n].numpy(), target.test.classes
    )
    [(_, [row])] = Evaluator(target, CPU, QUIET, EvalOptions()).run("autoattack")
    assert row["aa_ra"] <= row["pgd20_ra"]
    # The per-example flags behind the row: AutoAttack's robust flags come from its own
    # predictions, so "never robust where the clean image is misclassified" can fail; the
    # worst case is per image (robust to both), recomputed here from the stored flags.
    ((_, clean),) = _stored_flags(tmp_path / "flags", "clean").items()
    ((_, pgd),) = _stored_flags(tmp_path / "flags", "pgd").items()
    ((_, aa),) = _stored_flags(tmp_path / "flags", "autoattack").items()
    assert len(clean) == len(pgd) == len(aa) == n
    assert not (aa & ~clean).any()
    assert (row["ta"], row["pgd20_ra"], row["aa_ra"]) == pytest.approx(
        (100 * clean.mean(), 100 * pgd.mean(), 100 * aa.mean())
    )
    assert round(row["worst_ra"] * n / 100) == int((aa & pgd).sum())
    # torchattacks' AutoAttack: the same four attacks, but its own step counts and restarts
    theirs = torchattacks.AutoAttack(
        adversarial_resnet20, norm="Linf", eps=8 / 255, version="standard", n_classes=10, seed=0
    )
    theirs_robust = int((adversarial_resnet20(theirs(x[:n], y[:n])).argmax(1) == y[:n]).sum())
    ours_robust = round(row["aa_ra"] * n / 100)
    assert abs(ours_robust - theirs_robust) <= 1  # at most one image apart


# -- resuming ------------------------------------------------------------------------------


@pytest.mark.external
@pytest.mark.slow
def test_kill_9_eval_then_rerun_equals_uninterrupted(tmp_path):
    args = [*_external_args("resnet20-standard", 48), "--suite", "pgd20", "--batch-size", "4"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def launch(boards: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "robench", *args, "--leaderboard-dir", boards],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    assert launch("straight").wait() == 0
    proc = launch("killed")
    state = tmp_path / "killed" / ".eval-state"
    deadline = time.monotonic() + 300
    while not any(state.rglob("pgd-*.npz")):  # the attack has saved at least one batch
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.5))
    assert proc.poll() is None, "finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "pgd20.csv").exists()
    done = len(np.load(next(state.rglob("pgd-*.npz")))["flags"])
    assert 0 < done < 48
    rerun = launch("killed")
    assert rerun.wait() == 0, rerun.stdout.read()
    a = pd.read_csv(tmp_path / "straight" / "pgd20.csv")
    b = pd.read_csv(tmp_path / "killed" / "pgd20.csv")
    assert (a.ta.item(), a.ra.item()) == (b.ta.item(), b.ra.item())


def test_stored_flags_are_not_recomputed(tmp_path, monkeypatch):
    target = _target(_tiny(), tmp_path)
    options = EvalOptions(overrides=Overrides(steps=2))
    first = Evaluator(target, CPU, QUIET, options).run("pgd20")[0][1][0]
    monkeypatch.setattr(
        "robench.attacks.pgd.PGD._perturb", lambda *a: pytest.fail("attacked again")
    )
    second = Evaluator(target, CPU, QUIET, options).run("pgd20")[0][1][0]
    assert (first["ta"], first["ra"]) == (second["ta"], second["ra"])


# -- every suite on one tiny model ---------------------------------------------------------


def test_all_suites_write_their_boards(tmp_path):
    from helpers import quiet_session

    from robench.workflow import evaluate

    boards = tmp_path / "boards"
    stored = evaluate(
        quiet_session(),
        [_target(_tiny(), tmp_path, n=8)],
        "all",
        BoardSet(boards),
        EvalOptions(overrides=Overrides(steps=2)),
    )
    frames = {name: stored.ours(name) for name in stored.names()}
    assert set(frames) == {"pgd20", "autoattack", "unforeseen", "corruptions", "corruptions_long"}
    for name in frames:
        assert validate_board(boards / f"{name}.csv")[1] == []
    unforeseen = frames["unforeseen"].iloc[0]
    accs = [unforeseen[c] for c in UNFORESEEN_COLUMNS]
    assert len(accs) == 12 and unforeseen["mean"] == pytest.approx(np.mean(accs))
    assert unforeseen["overrides"] == "steps=2"
    # Each column and the worst case against the 12 attacks' stored per-example flags: the
    # worst case is the images robust to all 12 (test_worst_cases_are_per_example has a
    # case where that differs from the lowest column).
    stored = _stored_flags(tmp_path / "flags", "unforeseen")
    assert sorted(stored) == sorted(UNFORESEEN_COLUMNS)
    for column, flags in stored.items():
        assert len(flags) == 8 and unforeseen[column] == pytest.approx(100 * flags.mean())
    all_robust = np.logical_and.reduce(list(stored.values()))
    assert round(unforeseen["worst"] * 8 / 100) == int(all_robust.sum())
    aa = frames["autoattack"].iloc[0]
    assert aa["aa_ra"] <= aa["pgd20_ra"] and aa["overrides"] == ""
    long = frames["corruptions_long"]
    assert len(long) == 75 and set(long.corruption) == set(CORRUPTION_NAMES)
    corr = frames["corruptions"].iloc[0]
    assert corr["mean"] == pytest.approx(long.accuracy.mean())
    assert corr["corruption_source"].startswith("robench-generated CIFAR-10-C")


def test_worst_cases_are_per_example(tmp_path, monkeypatch):
    """Each attack fools one image, a different one each: every attack alone scores
    (n - 1) / n, robust to all of them are n - 12 (unforeseen) or n - 2 (AutoAttack and
    PGD-20) images; a worst case taken over the accuracies would say (n - 1) / n."""
    n = 16
    unforeseen = [e.name for e in unforeseen_evaluations(None)]

    def known_flags(self, evaluation, *, keep_examples=False):
        flags = np.ones(n, dtype=bool)
        kind = _kind(evaluation.protocol())
        if kind == "unforeseen":
            flags[unforeseen.index(evaluation.name)] = False
        elif kind in ("pgd", "autoattack"):
            flags[("pgd", "autoattack").index(kind)] = False
        clean = np.ones(n, dtype=bool)
        indices = evaluation.indices(n, lambda e: known_flags(self, e).measured)
        if indices is not None:  # the masking cross-check's subset: Square fools nothing
            clean = clean[indices]
            flags = flags[indices] | (kind == "square")
        return Flags(clean, None if kind == "clean" else flags, 0.0)

    monkeypatch.setattr(Evaluator, "flags", known_flags)
    evaluator = Evaluator(_target(_tiny(), tmp_path, n=n), CPU, QUIET, EvalOptions())
    [(_, [row])] = evaluator.run("unforeseen")
    assert sorted(unforeseen) == sorted(UNFORESEEN_COLUMNS)
    assert [row[c] for c in UNFORESEEN_COLUMNS] == pytest.approx([100 * (n - 1) / n] * 12)
    assert row["mean"] == pytest.approx(100 * (n - 1) / n)
    assert row["worst"] == pytest.approx(100 * (n - 12) / n)
    [(_, [row])] = evaluator.run("autoattack")
    assert (row["ta"], row["aa_ra"], row["pgd20_ra"]) == pytest.approx(
        (100.0, 100 * (n - 1) / n, 100 * (n - 1) / n)
    )
    assert row["worst_ra"] == pytest.approx(100 * (n - 2) / n)


def test_official_cifar10c_folder_is_used_when_given(tmp_path):
    target = _target(_tiny(), tmp_path, n=10)
    official = tmp_path / "CIFAR-10-C"
    official.mkdir()
    # "corrupted" = the clean images at every severity: accuracy must equal clean accuracy
    for name in CORRUPTION_NAMES:
        np.save(official / f"{name}.npy", np.concatenate([target.test.images] * 5))
    np.save(official / "labels.npy", np.concatenate([target.test.labels] * 5))
    options = EvalOptions(corruptions_dir=official)
    rows = Evaluator(target, CPU, QUIET, options).run("corruptions")
    (_, [row]), (_, long) = rows
    assert row["corruption_source"] == "CIFAR-10-C (official)"
    assert all(r["accuracy"] == row["ta"] for r in long)


def test_overrides_that_mean_nothing_are_refused(tmp_path):
    from robench.errors import ConfigError

    evaluator = Evaluator(
        _target(_tiny(), tmp_path), CPU, QUIET, EvalOptions(overrides=Overrides(eps="4/255"))
    )
    with pytest.raises(ConfigError, match="only --steps"):
        evaluator.run("unforeseen")


# -- ensembles -----------------------------------------------------------------------------


def test_ensemble_averages_softmax_and_attack_gradients_reach_every_member():
    members = [_tiny(), create("preact_tiny", num_classes=10).eval()]
    ensemble = SoftmaxEnsemble(members).eval()
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    expected = torch.stack([torch.softmax(m(x), 1) for m in members]).mean(0)
    assert torch.allclose(torch.softmax(ensemble(x), 1), expected, atol=1e-6)
    loss = nn.functional.cross_entropy(ensemble(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for member in members:
        grads = [p.grad for p in member.parameters() if p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0


# -- honesty -------------------------------------------------------------------------------


class _Quantize(nn.Module):
    """Rounds pixels to 4 levels with no gradient: classic gradient masking."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 3) / 3


class _AlwaysTraining(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True) -> nn.Module:
        return super().train(True)  # ignores .eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class _Noisy(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x + 0.05 * torch.randn_like(x))


def test_gradient_masking_model_is_flagged(tmp_path):
    model = nn.Sequential(_Quantize(), _tiny()).eval()
    options = EvalOptions(overrides=Overrides(steps=2))
    [(_, [row])] = Evaluator(_target(model, tmp_path), CPU, QUIET, options).run("pgd20")
    assert row["flags"] == "zero_gradients:8/8"  # every image of the checked batch
    clean = _target(_tiny(), tmp_path / "clean")
    [(_, [row])] = Evaluator(clean, CPU, QUIET, options).run("pgd20")
    assert row["flags"] == ""


def test_training_mode_and_randomised_models_are_refused_unless_allowed(tmp_path):
    stuck = _target(_AlwaysTraining(_tiny()), tmp_path / "a")
    with pytest.raises(EvaluationRefused, match="training mode"):
        Evaluator(stuck, CPU, QUIET, EvalOptions()).sanity()
    noisy = _target(_Noisy(_tiny()), tmp_path / "b")
    with pytest.raises(EvaluationRefused, match="randomised"):
        Evaluator(noisy, CPU, QUIET, EvalOptions()).sanity()
    allowed = Evaluator(noisy, CPU, QUIET, EvalOptions(allow_randomized=True)).sanity()
    assert "randomized" in allowed.text()
