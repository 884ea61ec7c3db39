"""The run lifecycle with a job of its own: what any training mode gets for free.

A toy job (one linear layer, one deterministic "step" per epoch) runs through the same
lifecycle as fine-tuning and pretraining: record first, metrics and `last` every epoch, the
job's state restored on resume, lines logged after the last checkpoint dropped, a finished
run skipped without setting anything up.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from helpers import train_env
from torch import nn

from robench.config import load_suite
from robench.distributed import DistContext
from robench.runs import RunDir, RunRecord
from robench.runs.record import DataRecord
from robench.train.lifecycle import run_lifecycle

SPEC = load_suite("smoke").runs["P1F3"]
pytestmark = pytest.mark.slow  # it trains (a toy job, but through every checkpoint)


class Crash(Exception):
    pass


class ToyJob:
    def __init__(self, epochs: int = 4, crash_in: int | None = None) -> None:
        torch.manual_seed(0)
        self.module = nn.Linear(3, 2)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=0.1, momentum=0.9)
        self.epochs = epochs
        self.crash_in = crash_in
        self.record = RunRecord("finetune", SPEC, DataRecord("toy", False, "h", 8, 2))
        self.total = 0.0  # the job's own state, restored from `last`
        self.restored: list[dict[str, Any]] = []

    def restore(self, meta: dict[str, Any]) -> None:
        self.restored.append(meta)
        self.total = meta["total"]

    def state_meta(self) -> dict[str, Any]:
        return {"total": self.total}

    def checkpoint_meta(self, epoch: int, record: dict[str, Any] | None) -> dict[str, Any]:
        return {"architecture": "toy", "epoch": epoch}

    def run_epoch(
        self, epoch, resume_from, checkpoint_every, on_checkpoint, on_sync=None
    ) -> dict[str, Any]:
        if epoch == self.crash_in:
            raise Crash
        x = torch.full((4, 3), float(epoch))
        loss = self.module(x).pow(2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.total += float(loss.detach())
        return {"epoch": epoch, "loss": float(loss.detach()), "total": self.total}

    def after_epoch(self, rd, epoch, record, write) -> None:
        pass

    def finish(self, rd, history) -> dict[str, Any]:
        return {"epochs": len(history), "total": self.total}

    def epoch_line(self, record) -> str:
        return f"epoch {record['epoch']}"


def _run(rd: RunDir, job: ToyJob) -> dict[str, Any]:
    return run_lifecycle(rd, SPEC, lambda: job, env=train_env(), ctx=DistContext())


def _metrics(rd: RunDir) -> list[dict[str, Any]]:
    return [json.loads(line) for line in rd.metrics.read_text().splitlines()]


def test_a_run_goes_through_every_step_and_is_skipped_once_finished(tmp_path):
    rd = RunDir(tmp_path / "P1F3")
    result = _run(rd, ToyJob())
    assert result["epochs"] == 4 and "finished" in result and "this_session_seconds" in result
    assert rd.read_record().spec == SPEC and [m["epoch"] for m in _metrics(rd)] == [1, 2, 3, 4]
    again = run_lifecycle(
        rd, SPEC, lambda: pytest.fail("set up again"), env=train_env(), ctx=DistContext()
    )
    assert again == rd.read_result()


def test_a_crashed_run_resumes_with_its_state_and_ends_as_an_uninterrupted_one(tmp_path):
    straight = ToyJob()
    _run(RunDir(tmp_path / "straight"), straight)
    rd = RunDir(tmp_path / "crashed")
    with pytest.raises(Crash):
        _run(rd, ToyJob(crash_in=3))
    assert not rd.is_finished() and len(_metrics(rd)) == 2
    # A line logged after the last checkpoint (a crash between the two writes) is dropped.
    with rd.metrics.open("a") as handle:
        handle.write(json.dumps({"epoch": 3, "loss": -1.0}) + "\n")
    resumed = ToyJob()
    result = _run(rd, resumed)
    assert resumed.restored and resumed.restored[0]["epoch"] == 2
    assert result["total"] == pytest.approx(straight.total)
    assert [m["loss"] for m in _metrics(rd)] == [
        m["loss"] for m in _metrics(RunDir(tmp_path / "straight"))
    ]
    for a, b in zip(resumed.module.parameters(), straight.module.parameters(), strict=True):
        assert torch.equal(a, b)
