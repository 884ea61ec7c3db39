"""`robench export RUN_DIR --out DIR`: a trained run as a folder anyone can load.

    DIR/model.safetensors   the weights (the whole model, or its trunk with --trunk-only), with
                            robench's checkpoint metadata in the header, as in a run directory
    DIR/config.json         architecture, num_classes, normalisation, input range, pretext,
                            scenario, the run's protocol and provenance, robench's version
    DIR/README.md           a model card: the Hub's YAML front matter (library, tags, data set,
                            the board numbers as model-index metrics) and the board rows

The numbers in the card come from the boards that hold this run's rows (its `model_id`):
`--leaderboard-dir`, else the reproduction's `leaderboards/` beside `runs/`. A model card
never carries a number its boards do not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

import robench
from robench.artifacts.card import model_card
from robench.atomic import atomic_write, check_output_dir, write_json_atomic, write_text_atomic
from robench.errors import RobenchError
from robench.models.classifier import CIFAR10_MEAN, CIFAR10_STD

ARTIFACT_FORMAT = "robench-model-v1"
WEIGHTS = "model.safetensors"
BOARDS = ("pgd20", "autoattack", "unforeseen", "corruptions")


def export_run(
    run_dir: Path,
    out: Path,
    *,
    checkpoint: str = "best_ta",
    trunk_only: bool = False,
    leaderboard_dir: Path | None = None,
) -> Path:
    """Write the artifact folder of one trained run (see the module); returns `out`."""
    from robench.eval.targets import run_model_id
    from robench.runs import open_run_dir
    from robench.runs.checkpoint import MODEL_PREFIX, load_checkpoint

    check_output_dir(out, "--out")
    run = open_run_dir(run_dir)
    record = run.read_record()
    spec = record.run
    tensors, meta = load_checkpoint(run.checkpoint(checkpoint))
    keep = MODEL_PREFIX + "trunk." if trunk_only else MODEL_PREFIX
    weights = {k: v for k, v in tensors.items() if k.startswith(keep)}
    config = {
        "format": ARTIFACT_FORMAT,
        "name": spec.name,
        "architecture": meta.get("architecture"),
        "num_classes": meta.get("num_classes", 10),
        "trunk_only": trunk_only,
        "normalization": {"mean": list(CIFAR10_MEAN), "std": list(CIFAR10_STD), "inside": True},
        "input_range": [0.0, 1.0],
        "pretext": spec.pretext,
        "scenario": spec.scenario,
        "checkpoint": checkpoint,
        "epoch": meta.get("epoch"),
        "protocol": spec.to_dict()["protocol"],
        "data": record.to_json()["data"],
        "provenance": {
            "git_revision": meta.get("git_revision"),
            "versions": meta.get("versions"),
            "suite": record.to_json()["suite"],
        },
        "robench_version": robench.__version__,
    }
    rows = _board_rows(run_model_id(run.path, record), _boards_folder(run.path, leaderboard_dir))
    card = model_card(config, rows)  # before anything is written: no half-made folder
    out.mkdir(parents=True, exist_ok=True)
    _write_weights(out / WEIGHTS, weights, {**meta, "trunk_only": trunk_only})
    write_json_atomic(out / "config.json", config)
    write_text_atomic(out / "README.md", card)
    return out


def _write_weights(path: Path, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    from robench.runs.checkpoint import FORMAT, META_KEY

    header = {"format": FORMAT, META_KEY: json.dumps(meta, sort_keys=True)}
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata=header))


def _boards_folder(run_dir: Path, given: Path | None) -> Path | None:
    if given is not None:
        if not given.is_dir():
            raise RobenchError(f"--leaderboard-dir {given} is not a directory")
        return given
    beside = run_dir.resolve().parent.parent / "leaderboards"  # DIR/runs/RUN -> DIR/leaderboards
    return beside if beside.is_dir() else None


def _board_rows(model_id: str, folder: Path | None) -> dict[str, pd.DataFrame]:
    """This model's rows of each board in `folder` (matched by model_id)."""
    from robench.leaderboard.store import read_board

    found: dict[str, pd.DataFrame] = {}
    for name in BOARDS if folder is not None else ():
        path = folder / f"{name}.csv"
        if path.is_file():
            board = read_board(path)
            mine = board[board["model_id"].astype(str) == model_id]
            if len(mine):
                found[name] = mine
    return found
