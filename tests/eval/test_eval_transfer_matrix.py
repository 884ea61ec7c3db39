"""Transfer analysis on three tiny trained runs: exact agreement with `robench eval`, and the
evaluation's kept examples reused instead of attacking again."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
from helpers import suite_toml, train_env
from rich.console import Console

from robench.attacks import build_attack
from robench.config import load_suite
from robench.data import make_splits
from robench.data.convert import to_float_chw
from robench.distributed import DistContext
from robench.errors import RobenchError
from robench.eval.evaluator import Evaluator
from robench.eval.suites import EvalOptions
from robench.eval.suites.pgd20 import PGD20_ATTACK
from robench.eval.targets import run_target
from robench.eval.transfer import (
    asr_table,
    overlap_table,
    source_flags,
    transfer_matrix,
    write_transfer,
)
from robench.flags import compute_flags
from robench.runs.checkpoint import load_model_checkpoint
from robench.runtime import Runtime
from robench.train.finetune import train_run

from synthetic import make_image_folder

pytestmark = pytest.mark.slow  # every test uses the module's three trained runs

N = 40
# eval_batch_size 16 over 40 images: three batches, the last one partial, so the examples
# only match `robench eval` if batching and the random stream are reproduced exactly.
SUITE = suite_toml(
    eval_batch_size=16,
    runs={
        "A": {"finetune": "F4"},
        "B": {"finetune": "F4", "seed": 1},
        "C": {"finetune": "F4", "seed": 2},
    },
)
CPU = Runtime.select("cpu")
QUIET = Console(quiet=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"), train_per_class=20)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, folder):
    root = tmp_path_factory.mktemp("transfer")
    path = root / "suite.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    out = root / "runs"
    for run in suite.runs.values():
        train_run(run, out, train_env(folder, suite))
    return [out / name for name in suite.runs]


@pytest.fixture(scope="module")
def result(runs, folder):
    return transfer_matrix(runs, "pgd20", runtime=CPU, data_dir=folder, seed=0)


def _count(fraction: float) -> int:
    return round(fraction * N)


def test_asr_csv_is_square_and_its_diagonal_is_one_minus_ra(result, runs, folder, tmp_path):
    asr_path, overlap_path, long_path = write_transfer(result, tmp_path)
    long = pd.read_csv(long_path)  # the same cells, one per row, with 95% Wilson intervals
    assert len(long) == 9 and (long["asr_lo"] <= long["asr"]).all()
    assert (long["asr"] <= long["asr_hi"]).all() and (long["n"] == N).all()
    asr = pd.read_csv(asr_path, index_col="evaluated")
    assert asr.shape == (3, 3)
    assert list(asr.index) == list(asr.columns) == ["A", "B", "C"]
    assert ((asr >= 0) & (asr <= 1)).all().all()
    assert len(pd.read_csv(overlap_path)) == 9  # 3 sources x 3 unordered pairs
    for run in runs:
        evaluator = Evaluator(run_target(run, data_dir=folder), CPU, QUIET, EvalOptions(seed=0))
        [(_, [row])] = evaluator.run("pgd20")
        assert row["n_eval"] == N
        diagonal = asr.loc[run.name, run.name]
        # the same images counted robust, image for image; the fractions agree to float noise
        assert N - _count(diagonal) == _count(row["ra"] / 100)
        assert diagonal == pytest.approx(1 - row["ra"] / 100, abs=1e-6)


def _kept(run, folder, seed: int = 0):
    """The run's PGD-20 flags with their examples, as the transfer analysis asks for them."""
    target = run_target(run, data_dir=folder)
    evaluator = Evaluator(target, CPU, QUIET, EvalOptions(seed=seed), DistContext())
    flags = source_flags(evaluator, "pgd20")
    return flags.examples, torch.from_numpy(target.test.labels), torch.from_numpy(flags.robust)


def _no_attack(monkeypatch):
    def attacked(*args, **kwargs):
        raise RuntimeError("attacked again")

    monkeypatch.setattr("robench.attacks.pgd.PGD._perturb", attacked)


def _fooled(runs, folder) -> dict[tuple[str, str], torch.Tensor]:
    """(source, target) -> per image, whether the source's kept example fools the target:
    recomputed here from the best_ta checkpoints, wrong on the clean image or the example."""
    test = make_splits("imagefolder", folder).test.first(N)
    clean = to_float_chw(test.images)
    models = {run.name: load_model_checkpoint(run / "checkpoints" / "best_ta")[0] for run in runs}

    def predict(model, x):
        with torch.no_grad():
            return torch.cat([model.eval()(chunk).argmax(1) for chunk in x.split(16)])

    fooled = {}
    for source in runs:
        examples, labels, _ = _kept(source, folder)
        assert torch.equal(labels, torch.from_numpy(test.labels))
        for name, model in models.items():
            robust = (predict(model, clean) == labels) & (predict(model, examples) == labels)
            fooled[source.name, name] = ~robust
    return fooled


def test_overlaps_partition_the_images_and_add_up_to_the_asr(result, runs, folder):
    fooled = _fooled(runs, folder)
    for (source, target), flags in fooled.items():  # every cell, image for image
        assert _count(result.asr.loc[target, source]) == int(flags.sum()), (source, target)
    assert set(result.overlap.source) == {"A", "B", "C"}
    for row in result.overlap.itertuples(index=False):
        assert row.n == N
        a, b = fooled[row.source, row.target_a], fooled[row.source, row.target_b]
        parts = {"only_a": a & ~b, "only_b": ~a & b, "both": a & b, "neither": ~a & ~b}
        for column, flags in parts.items():
            assert _count(getattr(row, column)) == int(flags.sum()), (row, column)
        assert _count(row.only_a) + _count(row.both) == _count(
            result.asr.loc[row.target_a, row.source]
        )
        assert _count(row.only_b) + _count(row.both) == _count(
            result.asr.loc[row.target_b, row.source]
        )
        assert row.only_a + row.both == pytest.approx(
            result.asr.loc[row.target_a, row.source], abs=1e-12
        )


def test_kept_examples_are_reused_instead_of_attacking_again(result, runs, folder, monkeypatch):
    pgd = next((runs[0] / "eval").glob("pgd-*.npz"))
    assert len(list(pgd.with_suffix(".examples").glob("*.npy"))) == 3  # one file per batch
    _no_attack(monkeypatch)
    again = transfer_matrix(runs, runtime=CPU, data_dir=folder, seed=0)
    pd.testing.assert_frame_equal(again.asr, result.asr)
    pd.testing.assert_frame_equal(again.overlap, result.overlap)
    examples, labels, robust = _kept(runs[0], folder)
    assert examples.shape == (N, 3, 32, 32) and examples.dtype == torch.float32
    assert labels.shape == robust.shape == (N,) and robust.dtype == torch.bool
    assert _count(1 - result.asr.loc["A", "A"]) == int(robust.sum())
    # `robench eval` of the same run finds the transfer analysis's flags: nothing to attack
    evaluator = Evaluator(run_target(runs[0], data_dir=folder), CPU, QUIET, EvalOptions(seed=0))
    [(_, [row])] = evaluator.run("pgd20")
    assert N - _count(result.asr.loc["A", "A"]) == _count(row["ra"] / 100)


def test_kept_examples_are_the_pgd20_examples(runs, folder):
    examples, _, robust = _kept(runs[1], folder)
    model, _ = load_model_checkpoint(runs[1] / "checkpoints" / "best_ta")
    test = make_splits("imagefolder", folder).test.first(N)
    attack = build_attack(PGD20_ATTACK, CPU)
    flags = compute_flags(
        model, test, runtime=CPU, batch_size=16, attack=attack, seed=0, keep_examples=True
    )
    assert torch.equal(flags.examples, examples)
    assert torch.equal(torch.from_numpy(flags.robust), robust)
    assert (examples - to_float_chw(test.images)).abs().max() <= 8 / 255 + 1e-6


def test_another_protocol_does_not_reuse_the_examples(runs, folder, tmp_path, monkeypatch):
    run = shutil.copytree(runs[2], tmp_path / "C")
    _no_attack(monkeypatch)
    _kept(run, folder, seed=0)  # kept under seed 0: nothing to do
    with pytest.raises(RuntimeError, match="attacked again"):
        _kept(run, folder, seed=1)


def test_runs_on_different_data_sets_are_refused(runs, tmp_path, folder):
    other = shutil.copytree(runs[2], tmp_path / "D")
    config = json.loads((other / "config.json").read_text())
    config["run"]["name"] = "D"
    config["data"]["content_hash"] = "0" * 32
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(RobenchError, match="different data sets") as info:
        transfer_matrix([runs[0], other], runtime=CPU, data_dir=folder)
    assert "\n" not in str(info.value)


def test_rich_tables_show_every_model(result):
    console = Console(record=True, width=160)
    console.print(asr_table(result))
    console.print(overlap_table(result))
    text = console.export_text()
    assert all(name in text for name in ("A", "B", "C")) and "%" in text
