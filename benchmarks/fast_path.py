"""robench's own path, timed: data resident on the device (BatchIterator: batched crop + flip),
robench's PGD under Runtime's autocast dtype, channels_last, fused SGD from make_optimizer,
robench's run_epoch driving the very training step fine-tuning uses
(robench.train.steps.ClassifierStep), and the flags primitive for evaluation
(robench.flags.compute_flags).
"""

from __future__ import annotations

import io

import torch
from rich.console import Console

from benchmarks.common import (
    AT_STEPS,
    EPOCH_IMAGES,
    EVAL_STEPS,
    LR,
    MOMENTUM,
    TEST_IMAGES,
    WEIGHT_DECAY,
    Measurement,
    Settings,
    clock,
)
from robench.attacks import build_attack
from robench.config import AttackConfig
from robench.data import ArrayDataset, BatchIterator
from robench.flags import compute_flags
from robench.models import Classifier, create
from robench.runtime import Runtime
from robench.train.loop import run_epoch
from robench.train.schedule import make_optimizer
from robench.train.steps import ClassifierStep

IMPLEMENTATION = "robench"


def runtime_for(settings: Settings) -> Runtime:
    return Runtime.select(str(settings.device), compile=settings.compile)


def build_model(name: str, num_classes: int, runtime: Runtime, state: dict | None) -> Classifier:
    model = create(name, num_classes=num_classes)
    if state is not None:
        model.load_state_dict(state)
    return runtime.prepare(model)


class _Trainer:
    """A model, its optimiser and robench's step; `epoch` runs robench's run_epoch once."""

    def __init__(
        self, settings: Settings, name: str, num_classes: int, state: dict, adversarial: bool
    ):
        self.settings = settings
        self.runtime = runtime_for(settings)
        self.model = build_model(name, num_classes, self.runtime, state)
        optimizer = make_optimizer(
            list(self.model.parameters()),
            lr=LR,
            momentum=MOMENTUM,
            weight_decay=WEIGHT_DECAY,
            device=self.runtime.device,
        )
        attack = None
        if adversarial:
            attack = build_attack(AttackConfig(steps=AT_STEPS), self.runtime)
        self.step = ClassifierStep(self.model, optimizer, self.runtime, attack)
        self.console = Console(file=io.StringIO())  # not a terminal: no live progress bar

    def batches(self, data: ArrayDataset, images: int, epoch: int) -> BatchIterator:
        batches = BatchIterator(
            data.first(min(images, len(data))),
            self.settings.batch_size,
            device=self.runtime.device,
            shuffle=True,
            augment=True,
            seed=self.settings.seed,
            channels_last=self.runtime.channels_last,
        )
        batches.set_epoch(epoch)
        return batches

    def epoch(self, batches: BatchIterator) -> None:
        self.model.train()
        run_epoch(
            batches,
            self.step,
            name="bench",
            epoch=batches.epoch,
            epochs=2,
            console=self.console,
            device=self.runtime.device,
            seed=self.settings.seed,
        )


def robench_train(
    settings: Settings,
    name: str,
    train: ArrayDataset,
    num_classes: int,
    state: dict,
    adversarial: bool,
) -> tuple[Measurement, Classifier]:
    trainer = _Trainer(settings, name, num_classes, state, adversarial)
    if settings.warmup_steps:
        trainer.epoch(trainer.batches(train, settings.warmup_steps * settings.batch_size, 1))
    timed = trainer.batches(train, settings.train_images, 2)
    start = clock(settings.device)
    trainer.epoch(timed)
    seconds = clock(settings.device) - start
    bn = "BN eval during the attack; " if adversarial else ""
    measurement = Measurement(
        name,
        "pgd10_at" if adversarial else "standard",
        IMPLEMENTATION,
        images=timed.num_examples,
        seconds=seconds,
        target_images=EPOCH_IMAGES,
        note=f"{bn}{describe_path(trainer.runtime)}",
    )
    return measurement, trainer.model


def robench_eval(
    settings: Settings, name: str, test: ArrayDataset, num_classes: int, state: dict, note: str
) -> Measurement:
    runtime = runtime_for(settings)
    model = build_model(name, num_classes, runtime, state)  # the evaluator does not compile
    attack = build_attack(AttackConfig(steps=EVAL_STEPS), runtime)
    batch = settings.batch_size
    if settings.warmup_steps:
        warm = test.first(min(len(test), settings.warmup_steps * batch))
        compute_flags(
            model, warm, runtime=runtime, batch_size=batch, attack=attack, seed=settings.seed
        )
    data = test.first(settings.eval_images)
    start = clock(settings.device)
    flags = compute_flags(
        model, data, runtime=runtime, batch_size=batch, attack=attack, seed=settings.seed
    )
    seconds = clock(settings.device) - start
    return Measurement(
        name,
        "pgd20_eval",
        IMPLEMENTATION,
        images=len(data),
        seconds=seconds,
        target_images=TEST_IMAGES,
        clean_acc=flags.ta,
        robust_acc=flags.ra,
        note=f"{note}; {describe_path(runtime)}",
    )


def precision_check(
    settings: Settings, name: str, test: ArrayDataset, num_classes: int, state: dict, note: str
) -> list[Measurement]:
    """PGD-20 TA/RA of the same weights with bf16 autocast and in float32 (on CPU too: CPU
    autocast supports bf16, only slowly)."""
    base = runtime_for(settings)
    data = test.first(settings.eval_images)
    rows, robust = [], {}
    for label, dtype in (("robench-bf16", torch.bfloat16), ("robench-fp32", None)):
        runtime = Runtime(base.device, dtype, base.channels_last, compile=False)
        model = build_model(name, num_classes, runtime, state)
        attack = build_attack(AttackConfig(steps=EVAL_STEPS), runtime)
        start = clock(settings.device)
        flags = compute_flags(
            model,
            data,
            runtime=runtime,
            batch_size=settings.batch_size,
            attack=attack,
            seed=settings.seed,
        )
        seconds = clock(settings.device) - start
        robust[label] = flags.robust
        rows.append(
            Measurement(
                name,
                "pgd20_precision",
                label,
                images=len(data),
                seconds=seconds,
                clean_acc=flags.ta,
                robust_acc=flags.ra,
                note=f"{note}; same weights, attack seed and images; not warmed up",
            )
        )
    differ = int((robust["robench-bf16"] != robust["robench-fp32"]).sum())
    rows[0].note += f"; robust flag differs from fp32 on {differ}/{len(data)} images"
    if settings.device.type == "cpu":
        rows[0].note += "; CPU bf16 autocast (slow kernels: ignore its img/s)"
    return rows


def profile_at(settings: Settings, name: str, train: ArrayDataset, num_classes: int, state: dict):
    """torch.profiler over a few robench PGD-10 AT steps: the top 15 ops by self time."""
    trainer = _Trainer(settings, name, num_classes, state, adversarial=True)
    batch = settings.batch_size
    trainer.epoch(trainer.batches(train, max(1, settings.warmup_steps) * batch, 1))
    activities = [torch.profiler.ProfilerActivity.CPU]
    if settings.device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        trainer.epoch(trainer.batches(train, 3 * batch, 2))
        clock(settings.device)
    key = "self_device_time_total" if settings.device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=15)
    return f"## {name}: robench PGD-10 AT, 3 steps of batch {batch}, sorted by {key}\n{table}\n"


def describe_path(runtime: Runtime) -> str:
    amp = str(runtime.amp_dtype).removeprefix("torch.") if runtime.amp_dtype else "fp32"
    parts = [amp, "channels_last" if runtime.channels_last else "NCHW"]
    if runtime.compile:
        parts.append("compiled")
    return " ".join(parts)
