"""The training stage: a suite's selected runs, each pretraining once, then the fine-tunings.

Returns the runs' records (typed config.json) so later stages read nothing back from disk:
evaluation opens each run from its record's directory, the paper tables take a pretraining's
image count from its record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from robench.config import RunSpec, Suite
from robench.distributed import current
from robench.runs import RunDir, RunRecord
from robench.train.finetune import train_run
from robench.train.lifecycle import PRETRAIN_FOLDER, TrainEnv
from robench.train.pretrain import pretrain_run


@dataclass(frozen=True)
class TrainedSuite:
    """What the training stage produced: one record per run and per pretraining."""

    runs_dir: Path
    runs: dict[str, RunRecord] = field(default_factory=dict)
    pretrainings: dict[str, RunRecord] = field(default_factory=dict)

    def run_dir(self, name: str) -> Path:
        return self.runs_dir / name

    def pretrain_images(self, run: RunSpec) -> int | None:
        """How many images the run's pretraining trained on (None: no pretraining)."""
        if run.pretraining is None:
            return None
        return self.pretrainings[run.pretraining.name].data.train


def train_suite(env: TrainEnv, suite: Suite, runs: list[RunSpec], out: Path) -> TrainedSuite:
    """Pretrain what `runs` start from (each pretraining once), then train them into `out`."""
    ctx = current()
    pretrain_dir = out / PRETRAIN_FOLDER
    for spec in suite.pretrainings(runs):
        # Pretraining runs on rank 0 alone (see pretrain.py): its trunk is on disk afterwards.
        ctx.on_main(lambda spec=spec: pretrain_run(spec, pretrain_dir, env))
    for run in runs:
        train_run(run, out, env)
    return TrainedSuite(
        runs_dir=out,
        runs={run.name: RunDir(out / run.name).read_record() for run in runs},
        pretrainings={
            spec.name: RunDir(pretrain_dir / spec.name).read_record()
            for spec in suite.pretrainings(runs)
        },
    )
