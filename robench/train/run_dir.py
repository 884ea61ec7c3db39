"""The run directory: what a run is (config.json), how it went (metrics.jsonl), its weights.

<run>/config.json          resolved suite entry + data provenance
<run>/metrics.jsonl        one line per epoch
<run>/checkpoints/{last,best_ta,best_ra}.{safetensors,json}
<run>/checkpoints/partial.*  mid-epoch state (every N steps), removed when the epoch ends
<run>/result.json          written last: its presence means the run finished
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robench.errors import ConfigError, RobenchError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from robench.config import Suite
    from robench.train.loop import EpochProgress

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

    @property
    def partial_checkpoint(self) -> Path:
        """Mid-epoch state: weights, optimiser, the epoch's running sums and its step."""
        return self.path / "checkpoints" / "partial"

    def is_finished(self) -> bool:
        return self.result.is_file()

    def read_config(self) -> dict[str, Any]:
        return _read_json(self.config, "run config")

    def read_result(self) -> dict[str, Any]:
        return _read_json(self.result, "run result")

    def check_same(self, section: str, expected: dict[str, Any]) -> None:
        """Refuse to resume or skip a run whose saved config differs from what is asked now."""
        if not self.config.is_file():
            return
        if self.read_config().get(section) != json.loads(json.dumps(expected)):
            raise ConfigError(
                f"{self.path} holds a {section} with a different configuration; "
                "choose another --out directory or delete that run"
            )

    def resume(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        """Load the `last` checkpoint (weights and optimiser state); its metadata, or None."""
        from robench.train import checkpoint as ckpt

        stem = self.checkpoint("last")
        if not ckpt.checkpoint_paths(stem)[0].is_file():
            return None
        tensors, meta = ckpt.load_checkpoint(stem)
        ckpt.load_model_tensors(module, tensors, str(stem))
        ckpt.load_optimizer_tensors(optimizer, module, tensors)
        return meta

    def resume_partial(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        completed_epochs: int,
        device: torch.device,
    ) -> EpochProgress | None:
        """Load a mid-epoch checkpoint of epoch `completed_epochs + 1`, if there is one.

        Returns the epoch's progress (step and running sums) to continue from. A partial
        checkpoint of another epoch is stale (the epoch finished after it was written) and is
        ignored.
        """
        from robench.train import checkpoint as ckpt
        from robench.train.loop import EpochProgress

        stem = self.partial_checkpoint
        if not ckpt.checkpoint_paths(stem)[0].is_file():
            return None
        tensors, meta = ckpt.load_checkpoint(stem)
        if int(meta.get("epoch", -1)) != completed_epochs + 1:
            return None
        ckpt.load_model_tensors(module, tensors, str(stem))
        ckpt.load_optimizer_tensors(optimizer, module, tensors)
        return EpochProgress.restore(tensors, meta["progress"], device)

    def drop_partial(self) -> None:
        from robench.train import checkpoint as ckpt

        for path in ckpt.checkpoint_paths(self.partial_checkpoint):
            path.unlink(missing_ok=True)


def suite_provenance(suite: Suite | None) -> dict[str, str] | None:
    """What a run records of the suite file it came from."""
    return (
        None if suite is None else {"name": suite.name, "path": suite.path, "sha256": suite.sha256}
    )


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
