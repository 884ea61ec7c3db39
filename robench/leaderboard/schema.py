"""The single source of leaderboard column names and types.

Every number carries its protocol: attack, eps (as a fraction string and as a float), steps,
restarts, number of images, seed, data set (and whether it is the JPEG copy), device and
version. Rows are identified by KEY_COLUMNS and upserted, never blindly appended.
"""

from __future__ import annotations

from typing import Any

# name -> pandas dtype
COLUMNS: dict[str, str] = {
    "run": "string",
    "suite": "string",
    "pretext": "string",
    "scenario": "string",
    "model": "string",
    "checkpoint": "string",
    "epochs_to_best": "Int64",
    "ta": "float64",
    "ra": "float64",
    "attack": "string",
    "eps": "string",
    "eps_value": "float64",
    "step_size": "string",
    "steps": "Int64",
    "restarts": "Int64",
    "n_eval": "Int64",
    "dataset": "string",
    "is_jpeg_copy": "boolean",
    "seed": "Int64",
    "device": "string",
    "robench_version": "string",
    "git_revision": "string",
    "train_suite": "string",
    "train_suite_sha256": "string",
    "eval_seconds": "float64",
    "run_dir": "string",
    "date": "string",
}

KEY_COLUMNS: tuple[str, ...] = (
    "run",
    "suite",
    "checkpoint",
    "attack",
    "eps",
    "step_size",
    "steps",
    "restarts",
    "n_eval",
    "seed",
    "dataset",
)

METRIC_COLUMNS: tuple[str, ...] = ("ta", "ra")

DISPLAY_COLUMNS: tuple[str, ...] = (
    "run",
    "pretext",
    "scenario",
    "ta",
    "ra",
    "epochs_to_best",
    "attack",
    "eps",
    "steps",
    "n_eval",
    "dataset",
    "device",
)


def check_row(row: dict[str, Any]) -> None:
    missing = [c for c in COLUMNS if c not in row]
    extra = [c for c in row if c not in COLUMNS]
    if missing or extra:
        raise ValueError(f"leaderboard row: missing {missing}, unknown {extra}")
