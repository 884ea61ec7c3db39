"""What an evaluation evaluates: a trained run, an ensemble of runs, or a model from elsewhere.

Each target hands the evaluator the same things: a model mapping [0, 1] images to logits, the
test set it is to be scored on, the identity columns of its leaderboard rows, and a folder for
its per-example flags (so an interrupted evaluation resumes). Trained runs and ensembles are
here; researchers' own models (`FILE.py:FACTORY` plus a weights file loaded with
`weights_only=True`, or a model in memory) in own_targets.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robench.columns import check_row_name
from robench.data import ArrayDataset, load_test
from robench.errors import ConfigError, DataError, RobenchError
from robench.runs import RunRecord, open_run_dir
from robench.runs.checkpoint import load_model_checkpoint, meta_int, model_tensors
from robench.runs.identity import combined_sha256, short_id, tensors_sha256

DEFAULT_BATCH_SIZE = 250


@dataclass
class EvalTarget:
    name: str
    model: nn.Module
    test: ArrayDataset
    data_info: dict[str, Any]  # dataset, is_jpeg_copy, content_hash
    identity: dict[str, Any]  # run, pretext, scenario, model, checkpoint, epochs_to_best, ...
    model_hash: str  # what the weights are: part of every stored flag file's key
    flag_dir: Path
    batch_size: int = DEFAULT_BATCH_SIZE
    notes: list[str] = field(default_factory=list)
    record: RunRecord | None = None  # a trained run's record (None: ensembles, your models)
    num_classes: int | None = None  # logits the model must give (None: the test set's classes)
    # its own published numbers (columns.PUBLISHED: a RobustBench zoo model's), for the boards
    # that show them beside robench's
    published: dict[str, Any] = field(default_factory=dict)

    @property
    def logits_width(self) -> int:
        return self.num_classes if self.num_classes is not None else len(self.test.classes)


def run_target(
    run_path: Path,
    *,
    checkpoint: str = "best_ta",
    data_dir: str | Path | None = None,
    n: int | None = None,
    allow_other_classes: bool = False,
) -> EvalTarget:
    """A trained run's checkpoint, scored on its data set's test split (first n images).

    A test set whose classes are not the ones the run was trained on (another image folder)
    is refused unless `allow_other_classes`: every label would mean something else.
    """
    rd = open_run_dir(run_path)
    record = rd.read_record()
    run = record.run
    protocol = run.protocol
    n = n if n is not None else protocol.eval_n
    test, info = load_test(protocol.data, data_dir, n=n)
    trained = record.data.classes
    if trained and tuple(test.classes) != tuple(trained) and not allow_other_classes:
        raise DataError(
            f"{run.name} was trained on the classes {', '.join(trained)}, the test set has "
            f"{', '.join(test.classes)}; pass --allow-other-classes to evaluate anyway"
        )
    notes = []
    if record.data.dataset != info["dataset"]:
        notes.append(
            f"{run.name} was trained on {record.data.dataset}; evaluating on {info['dataset']}"
        )
    stem = rd.checkpoint(checkpoint)
    model, meta = load_model_checkpoint(stem)
    return EvalTarget(
        name=run.name,
        model=model,
        test=test,
        data_info=info,
        identity={
            "run": run.name,
            "pretext": run.pretext,
            "scenario": run.scenario,
            "model": protocol.model,
            "checkpoint": checkpoint,
            "epochs_to_best": meta_int(meta, "epoch", 0, 10**6, str(stem)),
            "train_suite": "" if record.suite is None else record.suite.path,
            "train_suite_sha256": "" if record.suite is None else record.suite.sha256,
            "run_dir": str(rd.path),
            "model_id": run_model_id(rd.path, record),
        },
        model_hash=tensors_sha256(model_tensors(model), meta),
        flag_dir=rd.eval_dir,
        batch_size=protocol.eval_batch_size,
        notes=notes,
        record=record,
        num_classes=len(trained) if trained else None,
    )


class SoftmaxEnsemble(nn.Module):
    """Averages its members' softmax outputs; returns the log of that average as logits.

    log(mean softmax) is a valid logit vector (its softmax is the mean itself), so attacks that
    maximise cross-entropy attack the ensemble's averaged prediction as a whole, with gradients
    through every member (the paper's Table 6 ensembles).
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ConfigError("an ensemble needs at least two members")
        self.members = nn.ModuleList(members)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        probs = [torch.softmax(m(x).float(), dim=1) for m in self.members]
        return torch.stack(probs).mean(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probabilities(x).clamp_min(1e-12).log()


def ensemble_target(
    run_paths: list[Path],
    *,
    name: str | None = None,
    checkpoint: str = "best_ta",
    data_dir: str | Path | None = None,
    n: int | None = None,
    state_root: Path,
    allow_other_classes: bool = False,
) -> EvalTarget:
    """The softmax-average of several runs, evaluated (and attacked) as one model."""
    members = [
        run_target(
            p,
            checkpoint=checkpoint,
            data_dir=data_dir,
            n=n,
            allow_other_classes=allow_other_classes,
        )
        for p in run_paths
    ]
    hashes = {m.data_info["content_hash"] for m in members}
    if len(hashes) > 1:
        raise RobenchError("ensemble members were evaluated on different test data")
    names = [m.name for m in members]
    name = check_row_name(name or "ensemble(" + "+".join(names) + ")", "ensemble name")
    first = members[0]
    model_hash = combined_sha256(m.model_hash for m in members)
    return EvalTarget(
        name=name,
        model=SoftmaxEnsemble([m.model for m in members]),
        num_classes=first.num_classes,
        test=first.test,
        data_info=first.data_info,
        identity={
            "run": name,
            "pretext": "+".join(str(m.identity["pretext"]) for m in members),
            "scenario": "+".join(str(m.identity["scenario"]) for m in members),
            "model": "+".join(str(m.identity["model"]) for m in members),
            "checkpoint": checkpoint,
            "epochs_to_best": None,
            "train_suite": first.identity["train_suite"],
            "train_suite_sha256": first.identity["train_suite_sha256"],
            "run_dir": ";".join(m.identity["run_dir"] for m in members),
            "model_id": short_id("ensemble", *(m.identity["model_id"] for m in members)),
        },
        model_hash=model_hash,
        flag_dir=state_root / "ensembles" / f"{slug(name)}-{model_hash[:12]}",
        batch_size=min(m.batch_size for m in members),
        notes=[note for m in members for note in m.notes],
    )


def run_model_id(path: Path, record: RunRecord) -> str:
    """A run's identity: its directory (resolved) and the hash of the suite it came from, so
    two runs named alike (two suites, two --out folders) are two rows, and re-evaluating a
    run (a better checkpoint after resuming) replaces its row."""
    suite_hash = "" if record.suite is None else record.suite.sha256
    return short_id("run", str(Path(path).resolve()), suite_hash)


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]
