"""The run directory: what a run is (config.json), how it went (metrics.jsonl), its weights.

<run>/config.json          the run record (record.py): typed suite entry + data provenance
<run>/metrics.jsonl        one line per epoch
<run>/checkpoints/{last,best_ta,best_ra}.{safetensors,json}
<run>/checkpoints/partial.*  mid-epoch state (every N steps), removed when the epoch ends
<run>/eval/                per-example evaluation flags (flag_files.py)
<run>/result.json          written last: its presence means the run finished
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import torch
from torch import nn

from robench.atomic import write_json_atomic
from robench.config import PretrainSpec, RunSpec
from robench.config.choices import CheckpointName
from robench.errors import ConfigError, RobenchError
from robench.runs import checkpoint as ckpt
from robench.runs.record import RunRecord, parse_record

CHECKPOINT_KINDS: tuple[str, ...] = get_args(CheckpointName)
EVAL_FOLDER = "eval"


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

    @property
    def eval_dir(self) -> Path:
        """Where the run's evaluation flags (and kept examples) live."""
        return self.path / EVAL_FOLDER

    def checkpoint(self, kind: str) -> Path:
        """The stem of a checkpoint (`.safetensors` and `.json` are added)."""
        if kind not in CHECKPOINT_KINDS:
            raise ConfigError(f"checkpoint {kind!r} must be one of {', '.join(CHECKPOINT_KINDS)}")
        return self.path / "checkpoints" / kind

    @property
    def partial_checkpoint(self) -> Path:
        """Mid-epoch state: weights, optimiser, the epoch's running sums and its step."""
        return self.path / "checkpoints" / "partial"

    def is_finished(self) -> bool:
        return self.result.is_file()

    def read_record(self) -> RunRecord:
        return parse_record(read_json(self.config, "run config"), str(self.config))

    def write_record(self, record: RunRecord) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.config, record.to_json())

    def read_result(self) -> dict[str, Any]:
        return read_json(self.result, "run result")

    def write_result(self, result: dict[str, Any]) -> None:
        write_json_atomic(self.result, result)

    def check_same(self, spec: RunSpec | PretrainSpec) -> None:
        """Refuse to resume or skip a run whose recorded spec differs from what is asked now.

        The comparison is of typed specs, so keys a record predates take their defaults.
        """
        if not self.config.is_file():
            return
        if self.read_record().spec != spec:
            what = "run" if isinstance(spec, RunSpec) else "pretraining"
            raise ConfigError(
                f"{self.path} holds a {what} with a different configuration; "
                "choose another --out directory or delete that run"
            )

    def resume(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        """Load the `last` checkpoint (weights and optimiser state); its metadata, or None."""
        stem = self.checkpoint("last")
        if not ckpt.checkpoint_paths(stem)[0].is_file():
            return None
        tensors, meta = ckpt.load_checkpoint(stem)
        ckpt.load_model_tensors(module, tensors, str(stem))
        ckpt.load_optimizer_tensors(optimizer, module, tensors)
        return meta

    def resume_partial(
        self, module: nn.Module, optimizer: torch.optim.Optimizer, completed_epochs: int
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The tensors and metadata of a mid-epoch checkpoint of epoch `completed_epochs + 1`.

        Weights and optimiser state are loaded into `module` and `optimizer`; the caller
        restores the epoch's progress from the rest. A partial checkpoint of another epoch is
        stale (the epoch finished after it was written) and is ignored.
        """
        stem = self.partial_checkpoint
        if not ckpt.checkpoint_paths(stem)[0].is_file():
            return None
        tensors, meta = ckpt.load_checkpoint(stem)
        if int(meta.get("epoch", -1)) != completed_epochs + 1:
            return None
        ckpt.load_model_tensors(module, tensors, str(stem))
        ckpt.load_optimizer_tensors(optimizer, module, tensors)
        return tensors, meta

    def drop_partial(self) -> None:
        for path in ckpt.checkpoint_paths(self.partial_checkpoint):
            path.unlink(missing_ok=True)


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


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RobenchError(f"{what} {path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RobenchError(f"{what} {path} is corrupt ({exc})") from None
    if not isinstance(data, dict):
        raise RobenchError(f"{what} {path} is not a JSON object")
    return data
