"""An ensemble of pretext tasks on one shared trunk (paper Sec. 3.3, Figure 2).

Each member keeps exactly what it keeps alone (Rotation and Jigsaw their own stage-4 copy and
classifier, Selfie its transformer over the trunk's patch embeddings); the trunk theta_p is
passed in, as for single tasks, so it is trained once and saved once. Members are posed on the
same clean batch in the order of `ensemble_tasks`, which fixes how they draw from the step's
generator (and so makes a resumed run take the same steps).

Not registered in PRETEXTS: "ensemble" is a pseudo-task of the config, whose members are the
registered tasks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from robench.models import Classifier
from robench.pretext.base import PretextBatch, PretextTask
from robench.pretext.registry import create_task


class PretextEnsemble(nn.Module):
    """The members' heads, in order; state-dict keys are `tasks.<name>.<member key>`."""

    name: ClassVar[str] = "ensemble"
    # The paper's cosine schedule for ensemble pretraining (Sec. 4.2).
    default_lr_max: ClassVar[float] = 1e-3
    default_lr_min: ClassVar[float] = 1e-8

    def __init__(
        self,
        backbone: Classifier,
        tasks: tuple[str, ...] | list[str],
        task_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        if len(tasks) < 2 or len(set(tasks)) != len(tasks):
            raise ValueError(f"an ensemble needs >= 2 distinct tasks, got {tuple(tasks)}")
        options = task_options or {}
        self.tasks = nn.ModuleDict(
            {name: create_task(name, backbone, **options.get(name, {})) for name in tasks}
        )

    def members(self) -> Iterator[tuple[str, PretextTask]]:
        """(name, task) in the configured order."""
        for name, task in self.tasks.items():
            assert isinstance(task, PretextTask)
            yield name, task

    @property
    def names(self) -> list[str]:
        return list(self.tasks.keys())

    def make_batches(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, PretextBatch]:
        """Every member posed on the same clean batch x, drawing from `generator` in order."""
        return {name: task.make_batch(x, generator) for name, task in self.members()}

    def config(self) -> dict[str, Any]:
        """Members and their constructor arguments, saved with checkpoints."""
        return {"tasks": self.names, "members": {n: t.config() for n, t in self.members()}}
