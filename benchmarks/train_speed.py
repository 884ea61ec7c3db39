"""Training and evaluation speed: robench's fast path against the plain reference loop (and
torchattacks), side by side in one run, on the same models, batch size and image counts.

    python -m benchmarks.train_speed                      # CUDA if there is one, else CPU
    python -m benchmarks.train_speed --device cuda --fp32-eval-check --profile
    python -m benchmarks.train_speed --device cpu --aa-images 0

Per model: PGD-10 adversarial training and standard training (img/s after warm-up, extrapolated
to a 45,000-image epoch), PGD-20 evaluation (extrapolated to the 10,000 test images) and
AutoAttack standard (seconds on --aa-images). One CSV row per (model, workload,
implementation) goes to benchmarks/results/<device>.csv; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from benchmarks.autoattack_bench import run_autoattack
from benchmarks.common import (
    EPOCH_IMAGES,
    TEST_IMAGES,
    WORKLOADS,
    FlopsPerImage,
    Measurement,
    Settings,
    count_flops,
    describe_device,
    device_slug,
)
from benchmarks.fast_path import precision_check, profile_at, robench_eval, robench_train
from benchmarks.reference import reference_eval, reference_train
from benchmarks.report import make_rows, markdown_table, rich_table, write_csv
from robench.atomic import write_text_atomic
from robench.data import ArrayDataset, make_splits
from robench.models import create

RESULTS = Path(__file__).resolve().parent / "results"

# Per device: big enough to time on an H100, small enough for a ~1 minute CPU smoke run.
DEFAULTS = {
    "cuda": {
        "models": "preact_resnet18,preact_resnet50v2",
        "train_images": 40 * 256,  # 40 timed steps
        "eval_images": 1_000,
        "aa_images": 1_000,
        "batch_size": 256,  # the paper's (Protocol.batch_size)
        "warmup_steps": 5,
        "workers": 4,
        "threads": 0,  # torch's default
    },
    "cpu": {
        "models": "preact_tiny",
        "train_images": 2 * 32,
        "eval_images": 32,
        "aa_images": 4,
        "batch_size": 32,
        "warmup_steps": 1,
        "workers": 0,  # two shared cores: workers would only compete with the model
        # One thread: on a loaded 2-core machine two OpenMP threads stall each other (a
        # fwd+bwd measured 7x slower than with one); --threads 0 keeps torch's default.
        "threads": 1,
    },
}


def parse_args(argv: list[str] | None) -> tuple[Settings, Path, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_speed", description=__doc__)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--models", help="comma-separated robench model names")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="subset of the defaults")
    p.add_argument("--train-images", type=int, help="timed images per training measurement")
    p.add_argument("--eval-images", type=int, help="timed images per PGD-20 measurement")
    p.add_argument("--aa-images", type=int, help="AutoAttack images (0 skips AutoAttack)")
    p.add_argument(
        "--aa-attacks",
        default="standard",
        help="'standard' (APGD-CE, APGD-T, FAB-T, Square) or a custom list such as apgd-ce",
    )
    p.add_argument("--batch-size", type=int)
    p.add_argument("--warmup-steps", type=int, help="untimed batches before each timing")
    p.add_argument("--workers", type=int, help="DataLoader workers of the reference")
    p.add_argument("--threads", type=int, help="torch CPU threads (0: torch's default)")
    p.add_argument("--compile", action="store_true", help="torch.compile robench's training")
    p.add_argument("--fp32-eval-check", action="store_true", help="PGD-20 RA: bf16 vs fp32")
    p.add_argument("--profile", action="store_true", help="profile robench's PGD-10 AT steps")
    p.add_argument("--data", choices=("cifar10", "synthetic"), default="cifar10")
    p.add_argument("--data-dir", help="CIFAR-10 root (default: $ROBENCH_DATA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="CSV path (default benchmarks/results/<device>.csv)")
    p.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = p.parse_args(argv)

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {device}: CUDA is not available here")
    if dev.type not in DEFAULTS:
        p.error(f"--device {device}: use cpu or cuda")
    d = DEFAULTS[dev.type]

    def pick(name: str):
        value = getattr(args, name)
        return d[name] if value is None else value

    workloads = tuple(w for w in args.workloads.split(",") if w)
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        p.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    settings = Settings(
        device=dev,
        models=tuple(m for m in pick("models").split(",") if m),
        workloads=workloads,
        train_images=pick("train_images"),
        eval_images=pick("eval_images"),
        aa_images=pick("aa_images"),
        batch_size=pick("batch_size"),
        warmup_steps=pick("warmup_steps"),
        workers=pick("workers"),
        compile=args.compile and dev.type == "cuda",  # Runtime ignores compile on CPU too
        fp32_eval_check=args.fp32_eval_check,
        profile=args.profile,
        data=args.data,
        seed=args.seed,
        aa_attacks=tuple(a for a in args.aa_attacks.split(",") if a),
    )
    if min(settings.train_images, settings.eval_images, settings.batch_size) < 1:
        p.error("--train-images, --eval-images and --batch-size must be at least 1")
    threads = pick("threads")
    if min(settings.aa_images, settings.warmup_steps, settings.workers, threads) < 0:
        p.error("--aa-images, --warmup-steps, --workers and --threads must not be negative")
    if threads:
        torch.set_num_threads(threads)  # before the device slug, which names the thread count
    if settings.warmup_steps * settings.batch_size + settings.train_images > EPOCH_IMAGES:
        p.error(f"warm-up plus timed training images must fit in {EPOCH_IMAGES:,}")
    if max(settings.eval_images, settings.aa_images) > TEST_IMAGES:
        p.error(f"--eval-images and --aa-images must be at most {TEST_IMAGES:,}")
    for name in settings.models:
        create(name)  # an unknown model fails now, with the valid names
    out = args.out or RESULTS / f"{device_slug(dev)}.csv"
    return settings, out, args


def load_data(settings: Settings, data_dir: str | None) -> tuple[ArrayDataset, ArrayDataset, str]:
    """(train, test, data label): just enough images for the warm-up and timed regions."""
    n_train = settings.warmup_steps * settings.batch_size + settings.train_images
    warm = settings.warmup_steps * settings.batch_size
    n_test = min(max(settings.eval_images, settings.aa_images, warm), TEST_IMAGES)
    if settings.data == "synthetic":
        rng = np.random.default_rng(settings.seed)
        classes = tuple(f"class{i}" for i in range(10))

        def fake(n: int) -> ArrayDataset:
            images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            return ArrayDataset(images, rng.integers(0, 10, n), classes)

        return fake(n_train), fake(n_test), "synthetic (random pixels)"
    splits = make_splits("cifar10", data_dir, train_subset=n_train, test_subset=n_test)
    return splits.train, splits.test, splits.dataset


def run(
    settings: Settings, data_dir: str | None, console: Console
) -> tuple[list[Measurement], dict[str, FlopsPerImage], str, str]:
    """Every measurement, per model in order; the FLOP counts, data label and profiles."""
    train, test, label = load_data(settings, data_dir)
    nc = len(test.classes)
    measurements: list[Measurement] = []
    flops: dict[str, FlopsPerImage] = {}
    profiles: list[str] = []
    w = settings.workloads

    def record(m: Measurement) -> None:
        measurements.append(m)
        console.print(
            f"  {m.model} {m.workload} {m.implementation}: {m.images_per_s:,.1f} img/s "
            f"({m.images} images in {m.seconds:.2f} s)"
        )
        gc.collect()
        if settings.device.type == "cuda":
            torch.cuda.empty_cache()

    for name in settings.models:
        console.print(f"[bold]{name}[/bold] on {describe_device(settings.device)}")
        flops[name] = count_flops(name, nc, settings.device)
        torch.manual_seed(settings.seed)
        init = create(name, num_classes=nc).state_dict()  # every implementation starts here
        weights, weights_note = init, "random-init weights"

        def seeded(fn, *args):
            torch.manual_seed(settings.seed)
            return fn(*args)

        if "pgd10_at" in w:
            m, model = seeded(robench_train, settings, name, train, nc, init, True)
            record(m)
            weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            steps = -(-settings.train_images // settings.batch_size) + settings.warmup_steps
            weights_note = f"weights after {steps} robench PGD-10 AT steps"
            del model
            for impl in ("reference", "torchattacks"):
                record(seeded(reference_train, settings, name, train, nc, init, impl, True))
            if settings.profile:
                profiles.append(seeded(profile_at, settings, name, train, nc, init))
        if "standard" in w:
            record(seeded(robench_train, settings, name, train, nc, init, False)[0])
            record(seeded(reference_train, settings, name, train, nc, init, "reference", False))
        if "pgd20_eval" in w:
            record(seeded(robench_eval, settings, name, test, nc, weights, weights_note))
            for impl in ("reference", "torchattacks"):
                args = (settings, name, test, nc, weights, impl, weights_note)
                record(seeded(reference_eval, *args))
        if "autoattack" in w and settings.aa_images > 0:
            for impl in ("robench", "reference"):
                args = (settings, name, test, nc, weights, impl, weights_note)
                record(seeded(run_autoattack, *args))
        if settings.fp32_eval_check:
            for m in seeded(precision_check, settings, name, test, nc, weights, weights_note):
                record(m)
    return measurements, flops, label, "".join(profiles)


def main(argv: list[str] | None = None) -> Path:
    settings, out, args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # logs and CI: room for the whole table instead of 80 columns
        console = Console(width=160)
    measurements, flops, label, profile = run(settings, args.data_dir, console)
    settings = dataclasses.replace(settings, data=label)
    rows = make_rows(measurements, flops, settings)
    write_csv(rows, out)
    title = f"{describe_device(settings.device)}, torch {torch.__version__}"
    console.print(rich_table(rows, f"{title}, batch {settings.batch_size}"))
    if args.markdown:
        print(markdown_table(rows))
    console.print(f"wrote {out}")
    if profile:
        profile_path = out.with_name(f"{out.stem}-profile.txt")
        write_text_atomic(profile_path, profile)
        print(profile)
        console.print(f"wrote {profile_path}")
    return out


if __name__ == "__main__":
    main()
