"""The run directory: what a run is (config.json), how it went (metrics.jsonl), its weights.

<run>/config.json          resolved suite entry + data provenance
<run>/metrics.jsonl        one line per epoch
<run>/checkpoints/{last,best_ta,best_ra}.{safetensors,json}
<run>/result.json          written last: its presence means the run finished
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robench.errors import ConfigError, RobenchError

CHECKPOINT_KINDS = ("best_ta", "best_ra", "last")


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    def checkpoint(self, kind: str) -> Path:
        """The stem of a checkpoint (`.safetensors` and `.json` are added)."""
        if kind not in CHECKPOINT_KINDS:
            raise ConfigError(f"checkpoint {kind!r} must be one of {', '.join(CHECKPOINT_KINDS)}")
        return self.path / "checkpoints" / kind

    def is_finished(self) -> bool:
        return self.result.is_file()

    def read_config(self) -> dict[str, Any]:
        return _read_json(self.config, "run config")

    def read_result(self) -> dict[str, Any]:
        return _read_json(self.result, "run result")


def open_run_dir(path: str | Path) -> RunDir:
    """An existing, finished run directory, or a one-line error saying what is wrong with it."""
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise RobenchError(f"run directory {run.path} does not exist")
    if not run.config.is_file():
        raise RobenchError(f"{run.path} is not a robench run directory (no config.json)")
    if not run.is_finished():
        raise RobenchError(
            f"run {run.path} has not finished training (no result.json); rerun `robench train` "
            "to resume it"
        )
    return run


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RobenchError(f"{what} {path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RobenchError(f"{what} {path} is corrupt ({exc})") from None
    if not isinstance(data, dict):
        raise RobenchError(f"{what} {path} is not a JSON object")
    return data
