"""Ensemble adversarial pretraining (paper Sec. 3.3, Table 5): the regulariser, the step, runs."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import quiet_session, suite_toml, train_env
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from robench.attacks import PGD
from robench.attacks.multi_pgd import MultiPGD
from robench.config import load_suite
from robench.errors import ConfigError
from robench.models import create
from robench.pretext.ensemble import PretextEnsemble
from robench.runs import checkpoint as ckpt
from robench.runs.run_dir import RunDir
from robench.train import loop as loop_mod
from robench.train.diversity import diversity_logdet
from robench.train.ensemble_pretrain import EnsembleStep
from robench.train.lifecycle import PRETRAIN_FOLDER
from robench.train.pretrain import pretrain_run
from robench.workflow import train

from synthetic import make_image_folder

TASKS = ("rotation", "jigsaw", "selfie")
SMALL_SELFIE = {"selfie": {"num_layers": 1, "num_heads": 4, "ffn_dim": 64}}
EPS, STEP = 8 / 255, 2 / 255

SUITE = suite_toml(
    batch_size=32,
    train_subset=64,
    val_ra_subset=16,
    eval_n=16,
    eval_batch_size=16,
    train_attack={"steps": 2},
    val_attack={"steps": 2},
    pretrain_protocol={
        "epochs": 1,
        "batch_size": 32,
        "train_subset": 64,
        "val_subset": 16,
        "attack": {"steps": 2},
        "task_options": {"selfie": {"num_layers": 1, "num_heads": 4, "ffn_dim": 64}},
    },
    pretraining={"adv-ensemble-dpe": {"task": "ensemble", "mode": "adv", "diversity": 0.1}},
    runs={
        "ensemble-dpe-P3F4": {
            "pretrain": "adv:ensemble",
            "pretraining": "adv-ensemble-dpe",
            "finetune": "F4",
        }
    },
)


def _images(n: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g)


def _setup(seed: int = 0) -> tuple[nn.Module, PretextEnsemble]:
    torch.manual_seed(seed)
    backbone = create("preact_tiny")
    return backbone, PretextEnsemble(backbone, TASKS, SMALL_SELFIE)


def _step(backbone, ensemble, diversity: float, steps: int = 2, lr: float = 0.1) -> EnsembleStep:
    params = [*backbone.trunk.parameters(), *ensemble.parameters()]
    return EnsembleStep(
        backbone,
        ensemble,
        torch.optim.SGD(params, lr=lr, momentum=0.9),
        diversity=diversity,
        ridge=1e-5,
        attack=MultiPGD(EPS, STEP, steps),
    )


def _weights(*modules: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for m in modules for p in m.parameters()]


# --- the regulariser -------------------------------------------------------------------------


def test_diversity_is_zero_for_orthogonal_gradients_and_negative_otherwise():
    n, d = 4, 3 * 32 * 32
    basis = torch.eye(d)[:3].unsqueeze(0).expand(n, -1, -1)  # 3 orthogonal directions
    scales = (5.0, 0.01, 1.0)  # normalisation makes the scale irrelevant
    orthogonal = [scales[i] * basis[:, i].reshape(n, 3, 32, 32) for i in range(3)]
    assert abs(float(diversity_logdet(orthogonal, 1e-5))) < 1e-4

    same = [orthogonal[0], 3 * orthogonal[0], orthogonal[2]]  # two equal directions
    assert float(diversity_logdet(same, 1e-5)) < -10  # about log(2 * ridge) = -10.8
    two_equal = [orthogonal[0], orthogonal[0]]
    assert float(diversity_logdet(two_equal, 1e-5)) == pytest.approx(-10.82, abs=0.05)

    g = torch.Generator().manual_seed(0)
    random = [torch.randn(n, 3, 32, 32, generator=g) for _ in range(3)]
    value = float(diversity_logdet(random, 1e-5))
    assert -0.02 < value < 0  # nearly orthogonal in 3072-d, never exactly

    correlated = [random[0], random[0] + 0.5 * random[1], random[2]]
    assert float(diversity_logdet(correlated, 1e-5)) < value - 0.1


def test_diversity_is_per_example_then_averaged():
    n, d = 2, 3 * 32 * 32
    e = torch.eye(d)
    # example 0: orthogonal (g = 0); example 1: parallel (g = log(2 ridge + ridge^2))
    a = torch.stack([e[0], e[1]]).reshape(n, 3, 32, 32)
    b = torch.stack([e[1], e[1]]).reshape(n, 3, 32, 32)
    expected = 0.5 * (2 * torch.log1p(torch.tensor(1e-5)) + torch.log(torch.tensor(2e-5 + 1e-10)))
    assert float(diversity_logdet([a, b], 1e-5)) == pytest.approx(float(expected), abs=1e-3)


def test_the_gradient_of_g_reaches_the_perturbations_and_the_trunk():
    backbone, ensemble = _setup()
    step = _step(backbone, ensemble, diversity=0.1)
    x = _images()
    batches = ensemble.make_batches(x, torch.Generator().manual_seed(0))
    points = [x.clone().requires_grad_(True) for _ in TASKS]
    backbone.train(), ensemble.train()
    losses = step._example_losses(points, batches)
    grads = torch.autograd.grad(sum(loss.sum() for loss in losses), points, create_graph=True)
    g = diversity_logdet(list(grads), 1e-5)
    trunk = list(backbone.trunk.parameters())
    heads = [ensemble.tasks[name].parameters() for name in TASKS]
    first_head_params = [next(iter(h)) for h in heads]
    out = torch.autograd.grad(g, [*points, *trunk, *first_head_params], allow_unused=True)
    for name, grad in zip(TASKS, out[: len(TASKS)], strict=True):
        assert grad is not None and grad.abs().sum() > 0, f"no gradient of g to delta_{name}"
    trunk_grads = out[len(TASKS) : len(TASKS) + len(trunk)]
    assert any(gr is not None and gr.abs().sum() > 0 for gr in trunk_grads)
    # the Selfie summary token and the classifier heads are reached too (double backprop)
    assert all(gr is not None for gr in out[len(TASKS) + len(trunk) :])


# --- the step ---------------------------------------------------------------------------------


class _Posed(nn.Module):
    """Task i as a classifier of the ORIGINAL image: what single-task PGD attacks here."""

    def __init__(self, task, backbone, batch):
        super().__init__()
        self.task, self.backbone, self.batch = task, backbone, batch

    def forward(self, x):
        return self.task.logits(self.backbone, self.task.pose(x, self.batch), self.batch)


def _reference_se_step(backbone, ensemble, x, seed: int, steps: int, lr: float) -> None:
    """AP+SE written from single-task parts: make_batch per task, one single-task PGD per
    task on the original image, then (sum clean + sum adversarial) / 6, no g anywhere."""
    params = [*backbone.trunk.parameters(), *ensemble.parameters()]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    batches = {name: ensemble.tasks[name].make_batch(x, generator) for name in TASKS}
    attack = PGD(EPS, STEP, steps)
    adv = {
        name: attack.perturb(
            _Posed(ensemble.tasks[name], backbone, batches[name]),
            x,
            batches[name].targets,
            generator,
        )
        for name in TASKS
    }
    backbone.train(), ensemble.train()
    clean_losses, adv_losses = [], []
    for name in TASKS:
        task, batch = ensemble.tasks[name], batches[name]
        clean_losses.append(task.loss(task.logits(backbone, batch.inputs, batch), batch.targets))
    for name in TASKS:
        task, batch = ensemble.tasks[name], batches[name]
        logits = task.logits(backbone, task.pose(adv[name], batch), batch)
        adv_losses.append(task.loss(logits, batch.targets))
    loss = (sum(clean_losses) + sum(adv_losses)) / 6
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_lambda_zero_is_exactly_the_average_ensemble_and_lambda_changes_the_step():
    x = _images(8)
    results = {}
    for diversity in (0.0, 0.1):
        backbone, ensemble = _setup()
        torch.manual_seed(3)  # run_epoch seeds the global stream (dropout) with the step seed
        _step(backbone, ensemble, diversity)(x, None, torch.Generator().manual_seed(3))
        results[diversity] = _weights(backbone.trunk, ensemble)
    backbone, ensemble = _setup()
    before = _weights(backbone.trunk, ensemble)
    _reference_se_step(backbone, ensemble, x, seed=3, steps=2, lr=0.1)
    reference = _weights(backbone.trunk, ensemble)

    assert any(not torch.equal(a, b) for a, b in zip(before, reference, strict=True))
    for a, b in zip(results[0.0], reference, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    moved = max(float((a - b).abs().max()) for a, b in zip(results[0.1], reference, strict=True))
    assert moved > 1e-4, "lambda > 0 left the weights where AP+SE puts them"


def test_g_enters_both_the_attack_and_the_training_loss():
    backbone, ensemble = _setup()
    x = _images(8)
    batches = ensemble.make_batches(x, torch.Generator().manual_seed(0))
    points = {}
    for diversity in (0.0, 1.0):
        step = _step(backbone, ensemble, diversity, steps=3)
        points[diversity] = step.perturb(x, batches, torch.Generator().manual_seed(1))
        for p in points[diversity]:  # each in its own eps-ball around the original image
            assert float((p - x).abs().max()) <= EPS + 1e-6 and p.min() >= 0 and p.max() <= 1
    assert any(not torch.equal(a, b) for a, b in zip(points[0.0], points[1.0], strict=True))

    backbone.eval(), ensemble.eval()  # no dropout / BN updates: the two losses are comparable
    out = {}
    for diversity in (0.0, 0.1):
        # One attention kernel for both: the step itself picks the MATH kernel (which double
        # backprop can differentiate) only for lambda > 0, and Selfie's attention through
        # the default CPU kernel moves g by ~3e-6 relative, more than approx's 1e-6.
        with sdpa_kernel(SDPBackend.MATH):
            step = _step(backbone, ensemble, diversity)
            loss, extras, _, _ = step.objective(x, batches, points[1.0])
        out[diversity] = (float(loss.detach()), float(extras["diversity"]))
    (plain, g0), (regularised, g1) = out[0.0], out[0.1]
    assert g0 == pytest.approx(g1) and g0 < 0
    assert regularised == pytest.approx(plain + 0.1 * g0, abs=1e-5)


@pytest.mark.fastpath
def test_ensemble_step_under_bf16_autocast_gives_finite_g_and_gradients():
    backbone, ensemble = _setup()
    step = _step(backbone, ensemble, diversity=0.1)
    step.autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    step.attack.amp_dtype = torch.bfloat16
    x = _images(4)
    generator = torch.Generator().manual_seed(0)
    batches = ensemble.make_batches(x, generator)
    points = step.perturb(x, batches, generator)
    step.modules.train()
    loss, extras, _, _ = step.objective(x, batches, points)
    assert loss.dtype == torch.float32 and extras["diversity"].dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(extras["diversity"])
    assert float(extras["diversity"]) < 0
    loss.backward()
    grads = [p.grad for p in backbone.trunk.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_standard_ensemble_takes_g_on_clean_gradients():
    backbone, ensemble = _setup()
    step = EnsembleStep(
        backbone,
        ensemble,
        torch.optim.SGD(ensemble.parameters(), lr=0.1),
        diversity=0.1,
        ridge=1e-5,
        attack=None,
    )
    x = _images(4)
    batches = ensemble.make_batches(x, torch.Generator().manual_seed(0))
    backbone.eval(), ensemble.eval()
    loss, extras, _, _ = step.objective(x, batches, None)
    clean = [float(extras[f"loss_clean_{name}"]) for name in TASKS]
    assert "loss_adv" not in extras
    assert float(loss.detach()) == pytest.approx(
        sum(clean) / 3 + 0.1 * float(extras["diversity"]), 1e-5
    )


# --- runs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"), train_per_class=8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, folder):
    """The DPE pretraining, then F4 fine-tuning from its trunk, through `robench train`'s API."""
    path = tmp_path_factory.mktemp("suite") / "suite.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    out = tmp_path_factory.mktemp("runs")
    train(quiet_session(str(folder)), suite, out, None)
    return suite, out


@pytest.mark.slow
def test_ensemble_pretraining_run_saves_trunk_heads_and_metrics(trained):
    _, out = trained
    run = RunDir(out / PRETRAIN_FOLDER / "adv-ensemble-dpe")
    trunk, meta = ckpt.load_checkpoint(run.path / "trunk")
    heads, _ = ckpt.load_checkpoint(run.path / "task_head")
    assert trunk and all(k.startswith("trunk.") for k in trunk)
    for name in TASKS:
        assert any(k.startswith(f"task.tasks.{name}.") for k in heads), name
    assert (meta["pretext"], meta["mode"], meta["scenario"]) == ("ensemble", "adv", "P3")
    assert meta["ensemble_tasks"] == list(TASKS) and meta["diversity"] == 0.1
    assert meta["task_config"]["members"]["selfie"]["num_layers"] == 1
    config = json.loads(run.config.read_text())
    assert config["lr"] == {"max": 1e-3, "min": 1e-8, "schedule": "cosine"}
    assert config["pretraining"]["protocol"]["diversity"] == 0.1
    assert config["record_version"] == 2
    suite, _ = trained
    (spec,) = [s for s in suite.pretrainings(list(suite.runs.values())) if s.name == run.path.name]
    assert run.read_record().spec == spec  # the typed record is the suite's spec, key for key
    (record,) = [json.loads(x) for x in run.metrics.read_text().splitlines()]
    for name in TASKS:
        assert record[f"train_loss_adv_{name}"] > record[f"train_loss_clean_{name}"], name
        assert 0 <= record[f"val_pretext_acc_{name}"] <= 100
    assert -30 < record["train_diversity"] < 0
    assert record["train_loss_adv"] > 0


@pytest.mark.slow
def test_fine_tuning_inherits_the_ensemble_trunk(trained):
    suite, out = trained
    run = suite.runs["ensemble-dpe-P3F4"]
    assert (run.pretext, run.scenario) == ("ensemble", "P3F4")
    config = json.loads((out / run.name / "config.json").read_text())
    assert config["inherited_trunk"]["pretext"] == "ensemble"
    assert config["run"]["pretraining"]["protocol"]["ensemble_tasks"] == list(TASKS)
    pretrained, _ = ckpt.load_checkpoint(out / PRETRAIN_FOLDER / "adv-ensemble-dpe" / "trunk")
    final, _ = ckpt.load_checkpoint(RunDir(out / run.name).checkpoint("last"))
    assert set(pretrained) <= {k[len("model.") :] for k in final}
    assert any(not torch.equal(final["model." + k], v) for k, v in pretrained.items())
    assert (out / run.name / "result.json").is_file()


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_ensemble_pretraining_resumes_mid_epoch_exactly(folder, tmp_path, monkeypatch):
    """Killed after its first mid-epoch checkpoint, rerun: the same weights as never killed.

    Rotation + Selfie (dropout: the global stream must be reseeded per step), PGD-1, 3 steps.
    """
    text = (
        SUITE.replace(
            "batch_size = 32\ntrain_subset = 64\nval_subset",
            "batch_size = 16\ntrain_subset = 48\nval_subset",
        )
        .replace("diversity = 0.1", 'diversity = 1.0\nensemble_tasks = ["rotation", "selfie"]')
        .replace("steps = 2\n[pretrain_protocol.task", "steps = 1\n[pretrain_protocol.task")
    )
    path = tmp_path / "suite.toml"
    path.write_text(text)
    suite = load_suite(path)
    (spec,) = suite.pretrainings(list(suite.runs.values()))
    assert (spec.protocol.batch_size, spec.protocol.attack.steps) == (16, 1)
    env = train_env(folder, suite, checkpoint_every=2)
    pretrain_run(spec, tmp_path / "straight", env)
    real = loop_mod.run_epoch

    def run_epoch(*args, on_checkpoint=None, **kw):
        def save_then_die(progress):
            on_checkpoint(progress)
            raise Interrupted

        return real(*args, on_checkpoint=save_then_die, **kw)

    monkeypatch.setattr("robench.train.pretrain.run_epoch", run_epoch)
    with pytest.raises(Interrupted):
        pretrain_run(spec, tmp_path / "resumed", env)
    monkeypatch.undo()
    pretrain_run(spec, tmp_path / "resumed", env)
    for stem in ("trunk", "task_head"):
        a, _ = ckpt.load_checkpoint(tmp_path / "straight" / spec.name / stem)
        b, _ = ckpt.load_checkpoint(tmp_path / "resumed" / spec.name / stem)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), stem
    metrics = [
        {k: v for k, v in json.loads(line).items() if k not in ("seconds", "train_images_per_s")}
        for run in ("straight", "resumed")
        for line in (tmp_path / run / spec.name / "metrics.jsonl").read_text().splitlines()
    ]
    assert metrics[0] == metrics[1]


# --- config -----------------------------------------------------------------------------------


def test_ensemble_config_is_validated(tmp_path):
    def load(text):
        path = tmp_path / "s.toml"
        path.write_text(text)
        return load_suite(path)

    suite = load(SUITE + '[runs.se]\npretrain = "std:ensemble"\nfinetune = "F3"\n')
    spec = suite.runs["ensemble-dpe-P3F4"].pretraining
    assert spec.ensemble and spec.protocol.diversity == 0.1
    assert spec.protocol.ensemble_tasks == TASKS and spec.protocol.diversity_ridge == 1e-5
    assert suite.runs["se"].pretraining.name == "std-ensemble"
    assert suite.runs["se"].scenario == "P2F3"
    bad = [
        (SUITE.replace("diversity = 0.1", "diversity = -1.0"), "diversity"),
        (SUITE.replace("diversity = 0.1", 'ensemble_tasks = ["rotation"]'), "at least 2"),
        (SUITE.replace("diversity = 0.1", 'ensemble_tasks = ["rotation", "rotaton"]'), "rotaton"),
        (SUITE.replace("diversity = 0.1", 'ensemble_tasks = ["jigsaw", "jigsaw"]'), "twice"),
        (SUITE.replace('mode = "adv"', 'mode = "smooth"'), "random smoothing pretrains one"),
        (SUITE + "[pretrain_protocol.task_options.ensemble]\n", "unknown pretext"),
        (
            SUITE.replace(
                "steps = 2\n[pretrain_protocol.task", "restarts = 2\n[pretrain_protocol.task"
            ),
            "restarts",
        ),
    ]
    for text, needle in bad:
        with pytest.raises(ConfigError, match=needle):
            load(text)
