"""AutoAttack (standard version: APGD-CE, APGD-T, FAB-T, Square) through pyautoattack.

robench row: robench's own evaluation path, the registered "autoattack" attack through the flags
primitive `robench.flags.compute_flags` (the model prepared by Runtime, bf16 autocast on CUDA,
one AutoAttack per chunk of images with the flags saved after each chunk). Reference row:
pyautoattack called once on the plain float32 NCHW model. With a custom --aa-attacks list
(robench's path runs the standard version only) the robench row is pyautoattack on robench's
runtime wrapper instead.

AutoAttack attacks only the points still classified correctly, so its time depends on the
weights: a random or briefly trained model is fooled fast, and a robust one costs far more
(Square's 5,000 queries per surviving point dominate).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from benchmarks.common import EPS, Measurement, Settings, clock
from benchmarks.fast_path import build_model, describe_path, runtime_for
from robench.data import ArrayDataset
from robench.data.convert import to_float_chw
from robench.models import create
from robench.runtime import Runtime


class RuntimeLogits(nn.Module):
    """float32 logits of `model` under the runtime's autocast (as robench's AutoAttack path)."""

    def __init__(self, model: nn.Module, runtime: Runtime) -> None:
        super().__init__()
        self.model = model
        self.runtime = runtime

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.runtime.autocast():
            return self.model(x).float()


def run_autoattack(
    settings: Settings,
    name: str,
    test: ArrayDataset,
    num_classes: int,
    state: dict,
    implementation: str,
    note: str,
) -> Measurement:
    device = settings.device
    standard = settings.aa_attacks == ("standard",)
    runtime = runtime_for(settings)
    if implementation == "robench":
        model = build_model(name, num_classes, runtime, state)
        logits: nn.Module = RuntimeLogits(model, runtime)
        how = describe_path(runtime)
    else:
        model = create(name, num_classes=num_classes).to(device)
        model.load_state_dict(state)
        logits, how = model, "fp32 NCHW"
    logits.eval()
    data = test.first(settings.aa_images)
    # AutoAttack indexes and views its inputs: contiguous NCHW float32 on the device.
    x = to_float_chw(data.images, device)
    y = torch.from_numpy(data.labels).to(device)
    _warm_up(logits, x[: settings.batch_size], y[: settings.batch_size])
    start = clock(device)
    if implementation == "robench" and standard:
        robust = _robench_path(model, data, runtime, settings)
        how += "; robench.attacks.autoattack via robench.flags"
    else:
        robust = _pyautoattack(logits, x, y, settings)
    seconds = clock(device) - start
    with torch.no_grad():
        clean = (logits(x).argmax(1) == y).float().mean().item() * 100
    attacks = "standard" if standard else "+".join(settings.aa_attacks)
    return Measurement(
        name,
        "autoattack",
        implementation,
        images=len(data),
        seconds=seconds,
        clean_acc=clean,
        robust_acc=robust,
        note=f"{note}; {how}; {attacks}; time depends on how many points stay robust",
    )


def _robench_path(
    model: nn.Module, data: ArrayDataset, runtime: Runtime, settings: Settings
) -> float:
    from robench.attacks import build_attack
    from robench.config import AttackSpec
    from robench.flags import compute_flags
    from robench.runs import FlagFile

    spec = AttackSpec("autoattack", {"eps": EPS, "batch_size": settings.batch_size})
    with tempfile.TemporaryDirectory() as tmp:  # a fresh flag file: nothing to resume
        flags = compute_flags(
            model,
            data,
            runtime=runtime,
            batch_size=settings.batch_size,
            attack=build_attack(spec, runtime),
            seed=settings.seed,
            store=FlagFile(Path(tmp) / "aa.npz", {}, len(data)),
        )
    assert flags.ra is not None
    return flags.ra


def _pyautoattack(logits: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: Settings):
    from pyautoattack import AutoAttack  # the PyPI package "pyautoattack" (not "autoattack")

    standard = settings.aa_attacks == ("standard",)
    adversary = AutoAttack(
        logits,
        eps=EPS,
        norm="Linf",
        version="standard" if standard else "custom",
        attacks=None if standard else list(settings.aa_attacks),
        device=settings.device,
        seed=settings.seed,
    )
    _, y_adv = adversary.run_standard_evaluation(x, y, batch_size=settings.batch_size)
    return (y_adv == y).float().mean().item() * 100


def _warm_up(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    x = x.clone().requires_grad_(True)
    loss = nn.functional.cross_entropy(model(x), y)
    torch.autograd.grad(loss, x)
