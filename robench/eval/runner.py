"""Evaluate a trained run on the test set and turn the result into a leaderboard row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

import robench
from robench.attacks.factory import pgd_from_config
from robench.data import make_splits
from robench.errors import RobenchError
from robench.eval.accuracy import correct_flags
from robench.eval.suites import EvalSuite
from robench.progress import make_progress
from robench.provenance import git_revision, now_iso
from robench.runtime import Runtime
from robench.train.checkpoint import load_model_checkpoint
from robench.train.run_dir import open_run_dir


def evaluate_run(
    run_path: Path,
    suite: EvalSuite,
    *,
    runtime: Runtime,
    console: Console,
    n: int | None = None,
    checkpoint: str = "best_ta",
    data_dir: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """TA and robust accuracy of one run's checkpoint on the first n test images."""
    rd = open_run_dir(run_path)
    config = rd.read_config()
    run = config["run"]
    protocol = run["protocol"]
    n = n if n is not None else protocol.get("eval_n")
    splits = make_splits(
        protocol["data"], data_dir, val_fraction=protocol["val_fraction"], seed=protocol["seed"]
    )
    if config["data"]["content_hash"] != splits.content_hash:
        console.print(
            f"[yellow]warning:[/yellow] {run['name']} was trained on data with another content "
            f"hash ({config['data']['dataset']}); evaluating on {splits.dataset}"
        )
    test = splits.test.first(n)
    model, meta = load_model_checkpoint(rd.checkpoint(checkpoint))
    runtime.prepare(model)
    attack = pgd_from_config(suite.attack, runtime)
    with make_progress(console) as progress:
        task = progress.add_task(f"{run['name']} {suite.name}", total=len(test), rate=0.0, info="")
        done = 0

        def advance(batch: int) -> None:
            nonlocal done
            done += batch
            rate = done / max(progress.tasks[task].elapsed or 1e-9, 1e-9)
            progress.update(task, completed=done, rate=rate)

        flags = correct_flags(
            model, test, runtime, protocol["eval_batch_size"], attack, seed=seed, on_batch=advance
        )
    if flags.ra is None:  # pragma: no cover - every suite here has an attack
        raise RobenchError("evaluation produced no robust accuracy")
    return {
        "run": run["name"],
        "suite": suite.name,
        "pretext": run["pretext"],
        "scenario": run["scenario"],
        "model": protocol["model"],
        "checkpoint": checkpoint,
        "epochs_to_best": int(meta["epoch"]),
        "ta": flags.ta,
        "ra": flags.ra,
        "attack": f"pgd-{suite.attack.norm}",
        "eps": suite.attack.eps,
        "eps_value": suite.attack.eps_value,
        "step_size": suite.attack.step_size,
        "steps": suite.attack.steps,
        "restarts": suite.attack.restarts,
        "n_eval": len(test),
        "dataset": splits.dataset,
        "is_jpeg_copy": splits.is_jpeg_copy,
        "seed": seed,
        "device": runtime.describe(),
        "robench_version": robench.__version__,
        "git_revision": git_revision(),
        "train_suite": (config.get("suite") or {}).get("path", ""),
        "train_suite_sha256": (config.get("suite") or {}).get("sha256", ""),
        "eval_seconds": flags.seconds,
        "run_dir": str(rd.path),
        "date": now_iso(),
    }
