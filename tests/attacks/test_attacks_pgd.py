import pytest
import torch
import torchattacks

from robench.attacks import ATTACKS, PGD
from robench.errors import ConfigError
from robench.models import create


def _accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item() * 100


@pytest.mark.parametrize("norm,eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_pgd_stays_in_budget_and_range_and_leaves_x_alone(norm, eps):
    model = create("preact_tiny").eval()
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
    x_before = x.clone()
    x_adv = PGD(eps, eps / 4, 5, norm=norm).perturb(model, x, y)
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert size.max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.equal(x, x_before)


def test_attack_restores_the_models_mode():
    model = create("preact_tiny").train()
    model.head.eval()  # a mixed state must come back exactly
    PGD(8 / 255, 2 / 255, 2).perturb(model, torch.rand(4, 3, 32, 32), torch.zeros(4).long())
    assert model.training and not model.head.training and model.trunk.training


def test_eval_mode_attack_does_not_touch_batchnorm_statistics():
    model = create("preact_tiny").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    PGD(8 / 255, 2 / 255, 3).perturb(model, torch.rand(8, 3, 32, 32), torch.zeros(8).long())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_l2_pgd_zero_gradient_gives_no_nan():
    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 10, requires_grad=True) + 0 * x.sum()

    x = torch.rand(4, 3, 32, 32)
    x_adv = PGD(0.5, 0.1, 3, norm="l2", random_start=False).perturb(
        Constant(), x, torch.zeros(4).long()
    )
    assert torch.isfinite(x_adv).all()


def test_seeded_generator_makes_pgd_repeatable():
    model = create("preact_tiny").eval()
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    attack = PGD(8 / 255, 2 / 255, 2)
    a = attack.perturb(model, x, y, torch.Generator().manual_seed(3))
    b = attack.perturb(model, x, y, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(eps=1.5, step_size=0.1, steps=3),
        dict(eps=0.1, step_size=0.1, steps=-1),
        dict(eps=0.1, step_size=0.1, steps=3, norm="l3"),
    ],
)
def test_bad_hyperparameters_fail_at_construction(kwargs):
    with pytest.raises(ConfigError):
        ATTACKS.create("pgd", **kwargs)


@pytest.mark.external
@pytest.mark.slow
def test_pgd20_drives_a_standard_model_to_near_zero(standard_resnet20, exact_test_batch):
    x, y = exact_test_batch[0][:300], exact_test_batch[1][:300]
    clean = _accuracy(standard_resnet20, x, y)
    x_adv = PGD(8 / 255, 2 / 255, 20).perturb(standard_resnet20, x, y)
    assert clean > 85
    assert _accuracy(standard_resnet20, x_adv, y) < 2


@pytest.mark.external
@pytest.mark.slow
def test_pgd_matches_torchattacks_on_1000_images(adversarial_resnet20, exact_test_batch):
    # An adversarially trained model keeps robust accuracy well away from 0, where any two
    # attacks would trivially agree.
    model, (x, y) = adversarial_resnet20, exact_test_batch
    ours = _accuracy(model, PGD(8 / 255, 2 / 255, 10).perturb(model, x, y), y)
    torch.manual_seed(0)
    reference = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, random_start=True)
    theirs = _accuracy(model, reference(x, y), y)
    clean = _accuracy(model, x, y)
    assert 10 < theirs < clean - 20, "the comparison needs a regime where the attack half-works"
    assert abs(ours - theirs) <= 1.0


def test_restarts_keep_the_first_fooling_start_and_accept_positional_targets():
    from robench.models import create as create_model
    from robench.pretext import create_task

    backbone = create_model("preact_tiny").eval()
    task = create_task("selfie", backbone, num_layers=1, num_heads=4, ffn_dim=32).eval()
    batch = task.make_batch(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0))
    x_adv = PGD(8 / 255, 2 / 255, 2, restarts=3).perturb(
        task.bind(backbone, batch), batch.inputs, batch.targets
    )
    assert x_adv.shape == batch.inputs.shape
    assert (x_adv - batch.inputs).abs().max() <= 8 / 255 + 1e-6
