"""`robench export RUN_DIR --out DIR`: a trained run as a folder anyone can load.

    DIR/model.safetensors   the weights (the whole model, or its trunk with --trunk-only), with
                            robench's checkpoint metadata in the header, as in a run directory
    DIR/config.json         architecture, num_classes, normalisation, input range, pretext,
                            scenario, the run's protocol and provenance, robench's version
    DIR/README.md           a model card: the Hub's YAML front matter (library, tags, data set,
                            the board numbers as model-index metrics) and the board rows

A pretraining run (`OUT/pretrain/NAME`) exports its trunk: the paper's "general-purpose robust
pretrained model", which a suite fine-tunes from with `pretrain = "trunk:DIR"`.

The numbers in the card come from the boards that hold this run's rows (its `model_id`):
`--leaderboard-dir`, else the reproduction's `leaderboards/` beside `runs/`. A model card
never carries a number its boards do not.
"""

from __future__ import annotations

import dataclasses
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
    if record.kind == "pretrain":
        return _export_pretraining(run, record, out)
    spec = record.run
    tensors, meta = load_checkpoint(run.checkpoint(checkpoint))
    keep = MODEL_PREFIX + "trunk." if trunk_only else MODEL_PREFIX
    weights = {k: v for k, v in tensors.items() if k.startswith(keep)}
    config = {
        **_config_head(spec.name, meta, trunk_only),
        "pretext": spec.pretext,
        "scenario": spec.scenario,
        "checkpoint": checkpoint,
        "epoch": meta.get("epoch"),
        "protocol": spec.to_dict()["protocol"],
        **_config_tail(record, meta),
    }
    rows = _board_rows(run_model_id(run.path, record), _boards_folder(run.path, leaderboard_dir))
    return _write_folder(out, weights, {**meta, "trunk_only": trunk_only}, config, rows)


def _export_pretraining(run: Any, record: Any, out: Path) -> Path:
    """A pretraining run's trunk (its task heads stay behind: fine-tuning never takes them)."""
    from robench.runs.checkpoint import MODEL_PREFIX, load_checkpoint

    spec = record.spec
    tensors, meta = load_checkpoint(run.path / "trunk")
    weights = {MODEL_PREFIX + k: v for k, v in tensors.items()}  # the layout of --trunk-only
    meta = {**meta, "num_classes": len(record.data.classes) or 10}
    config = {
        **_config_head(spec.name, meta, True),
        "pretext": spec.task,
        "scenario": spec.scenario,
        "checkpoint": "trunk",
        "epoch": meta.get("epoch"),
        "protocol": dataclasses.asdict(spec.protocol),
        **_config_tail(record, meta),
    }
    return _write_folder(out, weights, {**meta, "trunk_only": True}, config, {})


def _write_folder(
    out: Path,
    weights: dict[str, Any],
    meta: dict[str, Any],
    config: dict[str, Any],
    rows: dict[str, pd.DataFrame],
) -> Path:
    card = model_card(config, rows)  # before anything is written: no half-made folder
    out.mkdir(parents=True, exist_ok=True)
    _write_weights(out / WEIGHTS, weights, meta)
    write_json_atomic(out / "config.json", config)
    write_text_atomic(out / "README.md", card)
    return out


def _config_head(name: str, meta: dict[str, Any], trunk_only: bool) -> dict[str, Any]:
    return {
        "format": ARTIFACT_FORMAT,
        "name": name,
        "architecture": meta.get("architecture"),
        "num_classes": meta.get("num_classes", 10),
        "trunk_only": trunk_only,
        "normalization": {"mean": list(CIFAR10_MEAN), "std": list(CIFAR10_STD), "inside": True},
        "input_range": [0.0, 1.0],
    }


def _config_tail(record: Any, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": record.to_json()["data"],
        "provenance": {
            "git_revision": meta.get("git_revision"),
            "versions": meta.get("versions"),
            "suite": record.to_json()["suite"],
        },
        "robench_version": robench.__version__,
    }


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
