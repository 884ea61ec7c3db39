"""What every pretext task must do: train the trunk, bind for attacks, own only its head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robench.attacks import PGD
from robench.models import create
from robench.pretext import PRETEXTS, PretextTask, create_task

CONFIGS = {
    "rotation": {},
    "jigsaw": {},
    "selfie": {"num_layers": 1, "num_heads": 4, "ffn_dim": 64},
}
TASKS = sorted(CONFIGS)
STEPS = 12


def _images(n: int = 8, seed: int = 0) -> torch.Tensor:
    """Learnable in a few steps by all three tasks: red = row ramp, green = column ramp (so
    orientation, tile layout and patch position show in the pixels), blue = a smooth random
    field, plus a little noise; fixed by the seed."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, 32)
    rows = ramp.view(1, 1, 32, 1).expand(n, 1, 32, 32)
    cols = ramp.view(1, 1, 1, 32).expand(n, 1, 32, 32)
    field = F.interpolate(torch.rand(n, 1, 4, 4, generator=g), size=32, mode="bilinear")
    x = torch.cat([rows, cols, field], 1) + 0.05 * torch.randn(n, 3, 32, 32, generator=g)
    return x.clamp(0, 1)


def _setup(name: str):
    torch.manual_seed(0)
    backbone = create("preact_tiny")
    return backbone, create_task(name, backbone, **CONFIGS[name])


@pytest.fixture(scope="module", params=TASKS)
def trained(request):
    """A backbone + task trained with Adam on one fixed batch, and the loss before and after."""
    backbone, task = _setup(request.param)
    batch = task.make_batch(_images(), torch.Generator().manual_seed(0))
    params = [*backbone.parameters(), *task.parameters()]
    optimizer = torch.optim.Adam(params, lr=2e-3)
    backbone.train(), task.train()
    losses = []
    for _ in range(STEPS + 1):
        loss = task.loss(task.logits(backbone, batch.inputs, batch), batch.targets)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return backbone, task, batch, losses


def test_registry_has_all_three_tasks():
    assert {"rotation", "jigsaw", "selfie"} <= set(PRETEXTS.names())


@pytest.mark.parametrize("name", TASKS)
def test_task_owns_its_head_and_not_the_trunk(name):
    backbone, task = _setup(name)
    assert isinstance(task, PretextTask) and task.name == name
    backbone_ids = {id(p) for p in backbone.parameters()}
    assert not backbone_ids & {id(p) for p in task.parameters()}
    assert not any(key.startswith(("trunk", "normalize")) for key in task.state_dict())
    rebuilt = create_task(name, backbone, **task.config())
    assert rebuilt.state_dict().keys() == task.state_dict().keys()


@pytest.mark.parametrize("name", TASKS)
def test_gradient_reaches_every_trunk_and_head_parameter(name):
    backbone, task = _setup(name)
    batch = task.make_batch(_images(), torch.Generator().manual_seed(0))
    task.loss(task.logits(backbone, batch.inputs, batch), batch.targets).backward()
    for module in (backbone.trunk, task):
        for key, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, key
    assert all(p.grad is None for p in backbone.head.parameters())  # the classifier is unused


@pytest.mark.fastpath
@pytest.mark.parametrize("name", TASKS)
def test_logits_follow_bf16_autocast_and_the_loss_is_float(name):
    backbone, task = _setup(name)
    batch = task.make_batch(_images(), torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = task.logits(backbone, batch.inputs, batch)
        loss = task.loss(logits, batch.targets)
    assert logits.dtype == torch.bfloat16
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


@pytest.mark.parametrize("name", TASKS)
def test_pose_reapplies_the_batch_transform_to_other_images(name):
    """What ensemble pretraining perturbs: x + delta, posed like the clean batch."""
    _, task = _setup(name)
    x = _images()
    batch = task.make_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(task.pose(x, batch), batch.inputs)
    delta = torch.zeros_like(x).requires_grad_(True)
    other = _images(seed=1)
    posed = task.pose(other + delta, batch)
    assert posed.shape == x.shape
    # a pixel permutation per image (identity for Selfie): the same values, rearranged
    assert torch.equal(posed.detach().flatten(1).sort(1).values, other.flatten(1).sort(1).values)
    (grad,) = torch.autograd.grad((posed * torch.arange(posed.numel()).view_as(posed)).sum(), delta)
    assert torch.equal(grad.flatten().sort().values, torch.arange(grad.numel()).float())


def test_training_lowers_the_loss(trained):
    _, _, _, losses = trained
    # Every task ends below 0.1 of its initial loss here; half leaves a wide margin.
    assert losses[-1] < 0.5 * losses[0], losses


def test_pgd_on_the_bound_task_raises_the_loss(trained):
    backbone, task, batch, _ = trained
    backbone.eval(), task.eval()
    bound = task.bind(backbone, batch)
    inputs_before = batch.inputs.clone()
    x_adv = PGD(8 / 255, 2 / 255, 5).perturb(
        bound, batch.inputs, batch.targets, torch.Generator().manual_seed(0)
    )
    assert torch.equal(batch.inputs, inputs_before)
    with torch.no_grad():
        clean = task.loss(bound(batch.inputs), batch.targets)
        adversarial = task.loss(bound(x_adv), batch.targets)
    assert adversarial > clean + 0.05, (float(clean), float(adversarial))


@pytest.mark.gpu
@pytest.mark.parametrize("name", TASKS)
def test_tasks_run_on_cuda_with_a_cuda_generator(name):
    backbone, task = _setup(name)
    backbone, task = backbone.cuda(), task.cuda()
    x = _images().cuda()
    a = task.make_batch(x, torch.Generator("cuda").manual_seed(0))
    b = task.make_batch(x, torch.Generator("cuda").manual_seed(0))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert all(t.device.type == "cuda" for t in (a.inputs, a.targets, *a.extra.values()))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = task.loss(task.logits(backbone, a.inputs, a), a.targets)
    loss.backward()
    assert torch.isfinite(loss)
    x_adv = PGD(8 / 255, 2 / 255, 2).perturb(task.bind(backbone, a), a.inputs, a.targets)
    assert x_adv.device.type == "cuda"
