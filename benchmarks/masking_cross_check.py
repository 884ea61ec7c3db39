"""The gradient-masking cross-check on real models: what it flags, and what it costs.

Runs robench's pgd20 suite (PGD-20 L-inf 8/255 plus the Square cross-check) on the two
external ResNet-20s (standard and adversarially trained, ../shared/external) and on masked
copies of them (tests/masked_zoo.py), on the exact-pixel CIFAR-10 test images. Each model is
evaluated twice into one flag folder: first with the cross-check off (PGD-20 alone, timed),
then with it on (PGD-20's flags are reused, so the second time is the cross-check's alone).

    python -m benchmarks.masking_cross_check --n 1000            # ~30 min on 2 CPU cores
    python -m benchmarks.masking_cross_check --n 200 --models standard --techniques detached

Prints a table and writes benchmarks/results/masking-cross-check-<device>.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the external ResNet-20 and the zoo live with the tests

from external_resnet20 import resnet20  # noqa: E402
from masked_zoo import TECHNIQUES, Masked  # noqa: E402

from robench.config import CrossCheckConfig  # noqa: E402
from robench.data import ArrayDataset, load_source  # noqa: E402
from robench.eval.evaluator import Evaluator  # noqa: E402
from robench.eval.sanity import EvaluationRefused  # noqa: E402
from robench.eval.suites import EvalOptions  # noqa: E402
from robench.eval.targets import EvalTarget  # noqa: E402
from robench.runtime import Runtime  # noqa: E402

COLUMNS = (
    "model", "technique", "n", "ta", "ra", "worst_ra", "cross_check_fooled", "cross_check_n",
    "queries", "flags", "refused", "pgd20_s", "cross_check_s", "cost_fraction", "device",
)  # fmt: skip


def external(name: str) -> torch.nn.Module:
    folder = Path(os.environ.get("ROBENCH_EXTERNAL", ROOT.parent / "shared" / "external"))
    payload = torch.load(folder / f"resnet20-{name}.pth", weights_only=True, map_location="cpu")
    model = resnet20()
    model.load_state_dict(payload["state_dict"], strict=True)
    return model.eval()


def target(model: torch.nn.Module, test: ArrayDataset, name: str, flag_dir: Path) -> EvalTarget:
    identity = dict.fromkeys(("pretext", "scenario", "model", "checkpoint"), "external")
    return EvalTarget(
        name=name,
        model=model,
        test=test,
        data_info={"dataset": "cifar10-exact", "is_jpeg_copy": False, "content_hash": "exact"},
        identity={
            **identity,
            "run": name,
            "epochs_to_best": None,
            "train_suite": "",
            "train_suite_sha256": "",
            "run_dir": "",
            "model_id": f"external:{name}",
        },
        model_hash=name,
        flag_dir=flag_dir,
        batch_size=250,
    )


def measure(model, test, label, technique, args, runtime, folder) -> dict:
    row = {"model": label, "technique": technique, "n": len(test), "device": runtime.describe()}
    cfg = CrossCheckConfig(images=args.cross_check_images, queries=args.queries)
    quiet = Console(quiet=True)
    tgt = target(model, test, f"{label}-{technique}", folder / f"{label}-{technique}")
    off = EvalOptions(cross_check=replace(cfg, images=0))
    try:
        start = time.perf_counter()
        Evaluator(tgt, runtime, quiet, off).run("pgd20")
        pgd = time.perf_counter() - start
        start = time.perf_counter()
        [(_, [result])] = Evaluator(tgt, runtime, quiet, EvalOptions(cross_check=cfg)).run("pgd20")
        check = time.perf_counter() - start
    except EvaluationRefused as exc:
        return {**row, "refused": str(exc)}
    return {
        **row,
        **{k: result[k] for k in ("ta", "ra", "worst_ra", "cross_check_fooled", "cross_check_n")},
        "queries": args.queries,
        "flags": result["flags"],
        "refused": "",
        "pgd20_s": round(pgd, 2),
        "cross_check_s": round(check, 2),
        "cost_fraction": round(check / pgd, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="exact test images (at most 1017)")
    parser.add_argument("--cross-check-images", type=int, default=CrossCheckConfig.images)
    parser.add_argument("--queries", type=int, default=CrossCheckConfig.queries)
    parser.add_argument("--models", default="standard,adv")
    parser.add_argument("--techniques", default="none," + ",".join(TECHNIQUES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    exact = os.environ.get("ROBENCH_EXACT", str(ROOT.parent / "shared/data/cifar10-exact"))
    test, _ = load_source("imagefolder", exact, "test")
    test = test.first(min(args.n, len(test)))
    runtime = Runtime.select(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label in args.models.split(","):
            base = external(label)
            for technique in args.techniques.split(","):
                model = base if technique == "none" else Masked(base, technique).eval()
                rows.append(measure(model, test, label, technique, args, runtime, Path(folder)))
                print(rows[-1], flush=True)
    table = Table(title=f"masking cross-check, {len(test)} exact images, {runtime.describe()}")
    for column in COLUMNS[:-1]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in COLUMNS[:-1]))
    Console(width=250).print(table)
    slug = runtime.describe().lower().replace(" ", "-")
    out = args.out or ROOT / "benchmarks" / "results" / f"masking-cross-check-{slug}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows([{c: row.get(c, "") for c in COLUMNS} for row in rows])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
