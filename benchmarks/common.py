"""What every implementation in the speed benchmark shares: the settings, one measurement,
the clock, the FLOP count and the device's name and peak.

Hyperparameters are the paper's (PROTOCOL.md): L-inf eps 8/255, step 2/255, PGD-10 for
training and PGD-20 for evaluation, SGD lr 0.1 / momentum 0.9 / weight decay 5e-4.
"""

from __future__ import annotations

import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from robench.models import create

EPS = 8 / 255  # L-inf budget
STEP = 2 / 255  # PGD step size
AT_STEPS = 10  # PGD steps per adversarial-training batch
EVAL_STEPS = 20  # PGD steps per evaluation batch
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4
EPOCH_IMAGES = 45_000  # a training epoch: CIFAR-10's 50,000 less the 10% validation split
TEST_IMAGES = 10_000  # the CIFAR-10 test set

# workload name -> what it times
WORKLOADS = {
    "pgd10_at": "PGD-10 adversarial training, img/s, extrapolated to a 45,000-image epoch",
    "standard": "standard training, img/s, extrapolated to a 45,000-image epoch",
    "pgd20_eval": "PGD-20 evaluation (clean + adversarial), extrapolated to 10,000 images",
    "autoattack": "AutoAttack standard (pyautoattack), seconds on the images given",
}

# Dense (non-sparse) bf16 tensor-core peaks from NVIDIA's data sheets, TFLOP/s. The first
# name that occurs in torch.cuda.get_device_name() wins, so specific names come first.
BF16_DENSE_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM ("H100 80GB HBM3")
    ("H200", 989.0),
    ("A100", 312.0),
)


@dataclass(frozen=True)
class Settings:
    device: torch.device
    models: tuple[str, ...]
    workloads: tuple[str, ...]
    train_images: int  # timed training images per (model, implementation), after warm-up
    eval_images: int  # timed PGD-20 evaluation images
    aa_images: int  # AutoAttack images (0 = skip)
    batch_size: int
    warmup_steps: int  # untimed batches before each timed region
    workers: int  # DataLoader workers of the reference implementation
    compile: bool
    fp32_eval_check: bool
    profile: bool
    data: str  # "cifar10" (ROBENCH_DATA) or "synthetic" (random pixels, same shapes)
    seed: int
    aa_attacks: tuple[str, ...] = ("standard",)  # or a custom subset, e.g. ("apgd-ce",)


@dataclass
class Measurement:
    model: str
    workload: str
    implementation: str
    images: int  # images processed in the timed region
    seconds: float  # wall time of the timed region
    target_images: int | None = None  # images/s is extrapolated to this many (None: as measured)
    clean_acc: float | None = None  # percent, where the workload computes it
    robust_acc: float | None = None
    note: str = ""

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def clock(device: torch.device) -> float:
    """perf_counter after all queued device work is done: the edge of a timed region."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


@dataclass(frozen=True)
class FlopsPerImage:
    forward: float
    attack_step: float  # forward + backward to the input only (no weight gradients)
    train_step: float  # forward + backward to the weights

    def for_workload(self, workload: str) -> float | None:
        if workload == "pgd10_at":
            return AT_STEPS * self.attack_step + self.train_step
        if workload == "standard":
            return self.train_step
        if workload == "pgd20_eval":
            return EVAL_STEPS * self.attack_step + 2 * self.forward  # + clean and adv forwards
        return None  # AutoAttack: data-dependent (only still-robust points are attacked)


def count_flops(name: str, num_classes: int, device: torch.device, batch: int = 4) -> FlopsPerImage:
    """Model FLOPs per image (2 per multiply-add), counted once on a small batch; they are the
    same for every implementation, so achieved TFLOP/s is proportional to images/s."""
    model = create(name, num_classes=num_classes).to(device)
    x = torch.rand(batch, 3, 32, 32, device=device, requires_grad=True)
    y = torch.zeros(batch, dtype=torch.long, device=device)

    def counted(fn) -> float:
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops() / batch

    def forward() -> None:
        with torch.no_grad():
            model(x)

    # backward(inputs=[x]) computes what autograd.grad(loss, x) does; FlopCounterMode's module
    # tracker does not support autograd.grad itself.
    return FlopsPerImage(
        forward=counted(forward),
        attack_step=counted(lambda: F.cross_entropy(model(x), y).backward(inputs=[x])),
        train_step=counted(lambda: F.cross_entropy(model(x), y).backward()),
    )


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_DENSE_PEAK_TFLOPS if key in name), None)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def device_slug(device: torch.device) -> str:
    """A file-name-safe device label: 'nvidia-h100-80gb-hbm3', 'cpu-xeon-2-50ghz-2t'."""
    if device.type == "cuda":
        text = torch.cuda.get_device_name(device)
    else:
        name = re.sub(r"\((R|TM|tm)\)|\b(Intel|AMD|CPU|Processor)\b|@", " ", cpu_name())
        text = f"cpu {name} {torch.get_num_threads()}t"
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
