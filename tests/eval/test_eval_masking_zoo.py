"""Every gradient-masking technique of tests/masked_zoo.py is flagged or refused; the honest
models are not (issue #18, section 1: the gradient-free cross-check).

Around the standard external ResNet-20 (TA ~93 % on the exact pixels): each masked copy
classifies as the model does but leaves PGD nowhere (or the wrong way) to go, so its RA
looks like robustness. The sanity checks catch some (NaN or zero gradients); the Square
cross-check must catch every one, including those whose gradients look fine (a reversed,
a shattered, a detached-but-leaking gradient). benchmarks/masking_cross_check.py runs the same
zoo at full size and measures the cross-check's cost.
"""

from __future__ import annotations

import pytest
from masked_zoo import TECHNIQUES, Masked
from rich.console import Console

from robench.config import CrossCheckConfig
from robench.data import ArrayDataset
from robench.eval.evaluator import Evaluator
from robench.eval.sanity import EvaluationRefused
from robench.eval.suites import EvalOptions, Overrides
from robench.eval.targets import EvalTarget
from robench.runtime import Runtime

pytestmark = [pytest.mark.slow, pytest.mark.external]

N, SUBSET, QUERIES = 40, 32, 50  # small: every masked copy is fooled in a few queries


@pytest.fixture(scope="module")
def exact_data(exact_test_batch) -> ArrayDataset:
    x, y = exact_test_batch
    images = (x[:N].permute(0, 2, 3, 1) * 255).round().byte().numpy()
    return ArrayDataset(images, y[:N].numpy(), tuple(str(i) for i in range(10)))


def _row(model, data: ArrayDataset, folder, name: str, steps: int | None = None) -> dict:
    identity = dict.fromkeys(("pretext", "scenario", "model", "checkpoint"), "external")
    identity.update(run=name, epochs_to_best=None, train_suite="", train_suite_sha256="")
    target = EvalTarget(
        name=name,
        model=model,
        test=data,
        data_info={"dataset": "cifar10-exact", "is_jpeg_copy": False, "content_hash": "x"},
        identity={**identity, "run_dir": "", "model_id": f"test:{name}"},
        model_hash=name,
        flag_dir=folder,
        batch_size=64,
    )
    options = EvalOptions(
        overrides=Overrides(steps=steps), cross_check=CrossCheckConfig(SUBSET, QUERIES)
    )
    evaluator = Evaluator(target, Runtime.select("cpu"), Console(quiet=True), options)
    [(_, [row])] = evaluator.run("pgd20")
    return row


def test_the_honest_external_models_are_not_flagged(
    standard_resnet20, adversarial_resnet20, exact_data, tmp_path
):
    for name, model in (("standard", standard_resnet20), ("adv", adversarial_resnet20)):
        row = _row(model, exact_data, tmp_path / name, name)
        assert row["flags"] == "", (name, row["flags"])
        assert row["ta"] > 80 and row["worst_ra"] <= row["ra"] < row["ta"]


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_every_masking_technique_is_flagged_or_refused(
    standard_resnet20, exact_data, tmp_path, technique
):
    model = Masked(standard_resnet20, technique).eval()
    try:
        row = _row(model, exact_data, tmp_path, technique, steps=5)  # PGD cannot move anyway
    except EvaluationRefused:
        return  # refused with one line: no number at all
    flags = row["flags"].split(";")
    assert any(f.startswith("gradient_masking_suspected:") for f in flags), row["flags"]
    assert row["ra"] > 50  # PGD was fooled: the flag is what tells the reader
    assert row["worst_ra"] < row["ra"]  # and worst_ra shows what Square found
