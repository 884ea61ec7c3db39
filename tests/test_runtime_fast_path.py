"""The CUDA fast path forced on the CPU (`ROBENCH_FAST_PATH_ON_CPU`, for tests only): bf16
autocast, channels_last and torch.compile run in CI the code a GPU runs.

Compiled with `aot_eager` (TorchDynamo's graph capture and AOTAutograd's compiled forward and
backward, executed by eager kernels): inductor's code generation costs a minute per graph on
two cores, and it is not the code CUDA runs either (Triton there, C++ here). One test compiles
with inductor itself: the resume test in tests/train/test_train_kill_resume.py.

How close to fp32, and why (measured on the toy runs below; see each assertion):
- Training: bf16 keeps 8 bits of mantissa, so each activation is rounded by up to 2^-9 (0.2%)
  and the losses of the first steps, on the same weights and batches, agree within about
  that (the logits and the loss are computed in float32). After an epoch the weights have
  followed slightly different gradients: the epoch's mean training loss must agree within 3%
  relative (seen: 0.3% standard, 0.6% adversarial); a real fast-path bug (a wrong layout, a
  loss in bf16 that underflows, an attack that does not move) shifts it by far more.
- Evaluation: a bf16 forward moves logits by ~1e-2 on this toy, so a clean prediction may
  flip only where fp32's top-two margin is that small; every flipped image must have an fp32
  margin under 0.1. PGD's steps take the sign of input gradients, so rounding changes the
  path; RA may differ by a few images (at most 10 points of 40 here).
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from helpers import quiet_session, run_cli, suite_toml

from robench.config import AttackConfig, load_suite
from robench.errors import ConfigError
from robench.runtime import FAST_PATH_ON_CPU, Runtime
from robench.workflow import train

from synthetic import make_image_folder

pytestmark = pytest.mark.fastpath

RUNS = {
    "st": {"finetune": "F3"},
    "at": {"finetune": "F4"},
    "rotation": {"pretrain": "adv:rotation", "finetune": "F3"},
    "jigsaw": {"pretrain": "adv:jigsaw", "finetune": "F3"},
    "selfie": {"pretrain": "adv:selfie", "finetune": "F3"},
    "dpe": {"pretrain": "adv:ensemble", "pretraining": "adv-ensemble-dpe", "finetune": "F3"},
}
SUITE = suite_toml(
    epochs=1,
    batch_size=20,
    eval_n=40,
    eval_batch_size=20,
    val_ra_subset=20,
    pretrain_protocol={"epochs": 1, "batch_size": 20, "val_subset": 20, "attack": {"steps": 2}},
    pretraining={"adv-ensemble-dpe": {"task": "ensemble", "mode": "adv", "diversity": 0.1}},
    runs=RUNS,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Every run trained under the fast path, and `st`/`at` once more in fp32."""
    root = tmp_path_factory.mktemp("fast")
    data = make_image_folder(root / "data", train_per_class=8, test_per_class=4)
    (root / "suite.toml").write_text(SUITE)
    suite = load_suite(root / "suite.toml")
    train(quiet_session(str(data)), suite, root / "fp32", ["st", "at"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAST_PATH_ON_CPU, "aot_eager")
        train(quiet_session(str(data)), suite, root / "fast", None)
    return root, data


def _epochs(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_the_fast_path_is_forced_on_the_cpu_only_when_asked(monkeypatch):
    plain = Runtime.select("cpu")
    assert (plain.precision, plain.channels_last, plain.compile) == ("fp32", False, False)
    monkeypatch.setenv(FAST_PATH_ON_CPU, "aot_eager")
    fast = Runtime.select("cpu")
    assert (fast.precision, fast.channels_last, fast.compile) == ("bf16", True, True)
    assert fast.compile_backend == "aot_eager" and fast.for_evaluation("fp32").precision == "fp32"
    monkeypatch.setenv(FAST_PATH_ON_CPU, "1")
    assert Runtime.select("cpu").compile_backend == "inductor"
    monkeypatch.setenv(FAST_PATH_ON_CPU, "yes please")
    with pytest.raises(ConfigError, match="must be 1, inductor or aot_eager"):
        Runtime.select("cpu")


@pytest.mark.parametrize("run", sorted(RUNS))
def test_every_kind_of_training_completes_under_the_fast_path(trained, run):
    root, _ = trained
    folder = root / "fast" / run
    runtime = json.loads((folder / "config.json").read_text())["runtime"]
    assert runtime["amp"] == "torch.bfloat16" and runtime["channels_last"] and runtime["compile"]
    assert runtime["compile_backend"] == "aot_eager"
    epochs = _epochs(folder)
    assert epochs and all(math.isfinite(e["train_loss"]) for e in epochs)
    if run in ("rotation", "jigsaw", "selfie", "dpe"):  # its pretraining ran the fast path too
        record = json.loads((folder / "config.json").read_text())
        pretraining = root / "fast" / "pretrain" / record["run"]["pretraining"]["name"]
        pre = json.loads((pretraining / "config.json").read_text())["runtime"]
        assert pre["amp"] == "torch.bfloat16" and pre["channels_last"]
        assert not pre["compile"]  # the pretraining steps run eagerly


@pytest.mark.parametrize("run", ["st", "at"])
def test_fast_path_training_stays_close_to_fp32(trained, run):
    root, _ = trained
    fast, fp32 = (_epochs(root / kind / run)[-1] for kind in ("fast", "fp32"))
    relative = abs(fast["train_loss"] - fp32["train_loss"]) / fp32["train_loss"]
    assert relative <= 0.03, (fast["train_loss"], fp32["train_loss"])


def test_evaluations_complete_in_bf16_under_the_fast_path(trained, monkeypatch, capsys, tmp_path):
    """PGD-20, AutoAttack (4 images) and the unforeseen attacks (2 steps), with bf16
    autocast; the PGD-20 flags are compared with fp32's on the same images."""
    root, data = trained
    run = str(root / "fast" / "at")
    boards = tmp_path / "boards"  # a board's row key has no precision: fp32 goes elsewhere
    common = ("--data-dir", str(data), "--device", "cpu", "--leaderboard-dir")
    code, _, err = run_cli(monkeypatch, capsys, "eval", run, "--suite", "pgd20",
                           *common, str(tmp_path / "fp32"))  # fmt: skip
    assert code == 0, err
    monkeypatch.setenv(FAST_PATH_ON_CPU, "aot_eager")
    for suite, extra in (("pgd20", ()), ("autoattack", ("--n", "4")),
                         ("unforeseen", ("--n", "8", "--steps", "2"))):  # fmt: skip
        code, _, err = run_cli(monkeypatch, capsys, "eval", run, "--suite", suite,
                               "--precision", "bf16", *extra, *common, str(boards))  # fmt: skip
        assert code == 0, f"{suite}: {err}"
        rows = pd.read_csv(boards / f"{suite}.csv")
        assert len(rows) and (rows["precision"] == "bf16").all(), suite
        assert rows["ta"].between(0, 100).all(), suite
    bf16, fp32 = (pd.read_csv(d / "pgd20.csv").iloc[0] for d in (boards, tmp_path / "fp32"))
    assert fp32["precision"] == "fp32" and bf16["n_eval"] == fp32["n_eval"] == 40
    assert abs(bf16["ra"] - fp32["ra"]) <= 10.0 and abs(bf16["ta"] - fp32["ta"]) <= 10.0


def test_the_compiled_forward_inside_an_attack_computes_no_weight_gradients():
    """Counted in the compiled backward graphs themselves: during PGD, one gradient (the
    input's); a training backward through the same compiled module, one per weight (the
    control that shows the count can fail)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    from robench.attacks import build_attack
    from robench.models import create

    torch._dynamo.reset()
    outputs: list[int] = []

    def count_backward(graph: torch.fx.GraphModule, _inputs):
        (output,) = [node for node in graph.graph.nodes if node.op == "output"]
        outputs.append(sum(arg is not None for arg in output.args[0]))
        return make_boxed_func(graph.forward)

    backend = aot_autograd(fw_compiler=lambda graph, _inputs: make_boxed_func(graph.forward),
                           bw_compiler=count_backward)  # fmt: skip
    model = create("preact_tiny").eval()
    compiled = torch.compile(model, backend=backend)
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    attack = build_attack(AttackConfig(eps="8/255", step_size="2/255", steps=2))
    attack.perturb(compiled, x, y, torch.Generator().manual_seed(0))
    assert outputs == [1], outputs  # compiled once, for the input's gradient only
    weights = sum(1 for p in model.parameters() if p.requires_grad)
    assert weights > 10  # restored after the attack
    torch.nn.functional.cross_entropy(compiled(x), y).backward()
    assert outputs[1:] == [weights], outputs
    torch._dynamo.reset()
