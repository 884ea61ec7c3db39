"""What a suite is made of, typed: pretraining runs, fine-tuning runs, the suite itself.

These are the inputs of the training stage and, read back from a run directory's config.json
(robench/runs/record.py), what a run is. suite.py builds them from a suite file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from robench.config.choices import Finetune, PretrainMode
from robench.config.protocol import PretrainProtocol, Protocol, RuntimeConfig
from robench.config.tables import TableSpec
from robench.config.typed import build
from robench.errors import ConfigError

FINETUNE_SCENARIOS = {
    # name: (trunk frozen?, adversarial?) — the paper's Table 2.
    "F1": (True, False),
    "F2": (True, True),
    "F3": (False, False),
    "F4": (False, True),
}
# mode -> the scenario's pretraining half: P2 standard, P3 adversarial, PS random smoothing.
PRETRAIN_MODES = {"std": "P2", "adv": "P3", "smooth": "PS"}
ENSEMBLE = "ensemble"  # the pseudo-task: every task of `ensemble_tasks` on one shared trunk
PAPER_PRETEXTS = ("selfie", "rotation", "jigsaw")  # the single tasks of the paper's Table 3
TRUNK_MODE = "trunk"  # pretrain = "trunk:PATH_OR_ID": an exported model's trunk (robench export)
DERIVED_KEYS = ("pretext", "scenario")  # recorded in a run's to_dict() for readers; not inputs


@dataclass(frozen=True)
class PretrainSpec:
    """One self-supervised pretraining run, shared by every fine-tuning run that names it."""

    name: str
    task: str
    mode: PretrainMode  # "std" (P2), "adv" (P3) or "smooth" (PS)
    protocol: PretrainProtocol

    @property
    def adversarial(self) -> bool:
        return self.mode == "adv"

    @property
    def smoothing(self) -> bool:
        return self.mode == "smooth"

    @property
    def ensemble(self) -> bool:
        return self.task == ENSEMBLE

    @property
    def scenario(self) -> str:
        return PRETRAIN_MODES[self.mode]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "mode": self.mode,
            "protocol": dataclasses.asdict(self.protocol),
        }


@dataclass(frozen=True)
class TrunkSource:
    """An exported trunk a run fine-tunes from (`pretrain = "trunk:PATH_OR_ID"`), as found when
    the suite was read; its weights' hash is checked again when the trunk is loaded."""

    source: str  # an absolute folder, or hf-hub:ORG/NAME[@REV]
    pretext: str
    origin: str  # the scenario of the run it was exported from: P2/P3/PS, or e.g. P3F4
    architecture: str
    weights_sha256: str

    @property
    def scenario(self) -> str:
        """The scenario's pretraining half: a pretraining's own (P2, P3, PS); PT for the trunk
        of a fine-tuned model, which no scenario of the paper's Table 2 names."""
        return self.origin if self.origin in PRETRAIN_MODES.values() else "PT"


@dataclass(frozen=True)
class RunSpec:
    """One fine-tuning (or end-to-end, P1) run."""

    name: str
    pretrain: str  # "none" or "<mode>:<task>", mode std, adv or smooth
    finetune: Finetune
    protocol: Protocol
    pretraining: PretrainSpec | None = None
    trunk: TrunkSource | None = None  # pretrain = "trunk:...": the exported trunk

    @property
    def pretext(self) -> str:
        if self.trunk is not None:
            return self.trunk.pretext
        return "none" if self.pretrain == "none" else self.pretrain.split(":", 1)[1]

    @property
    def scenario(self) -> str:
        if self.trunk is not None:
            return f"{self.trunk.scenario}{self.finetune}"
        mode = self.pretrain.split(":", 1)[0]
        return f"{PRETRAIN_MODES.get(mode, 'P1')}{self.finetune}"

    @property
    def adversarial(self) -> bool:
        return FINETUNE_SCENARIOS[self.finetune][1]

    @property
    def frozen_trunk(self) -> bool:
        return FINETUNE_SCENARIOS[self.finetune][0]

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "pretrain": self.pretrain,
            "pretraining": None if self.pretraining is None else self.pretraining.to_dict(),
            "finetune": self.finetune,
            "pretext": self.pretext,
            "scenario": self.scenario,
            "protocol": dataclasses.asdict(self.protocol),
        }
        if self.trunk is not None:  # records of other runs stay as they were
            out["trunk"] = dataclasses.asdict(self.trunk)
        return out

    @property
    def is_table3_cell(self) -> bool:
        """A plain cell of Table 3: single-task (or no) std/adv pretraining of the default set.

        Runs that exist for the other tables (ensemble, random-smoothing or resized
        pretraining, the auxiliary-head baseline) would otherwise land in a Table 3 cell they
        do not belong to (and in the Table 4 transfer matrix).
        """
        if self.protocol.auxiliary is not None or self.trunk is not None:
            return False
        if self.pretraining is None:
            return True
        spec = self.pretraining
        return (
            spec.mode in ("std", "adv")
            and spec.task in PAPER_PRETEXTS
            and spec.name == f"{spec.mode}-{spec.task}"
        )

    @classmethod
    def from_dict(cls, table: dict[str, Any], where: str) -> RunSpec:
        """The inverse of `to_dict` (a run record's "run" section), with the typed builder."""
        table = dict(table)
        derived = {key: table.pop(key, None) for key in DERIVED_KEYS}
        spec = build(cls, table, where)
        for key, value in derived.items():
            if value is not None and getattr(spec, key) != value:
                raise ConfigError(
                    f"{where}.{key}: {value!r} does not match the run ({key} "
                    f"{getattr(spec, key)!r})"
                )
        return spec


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    path: str
    sha256: str
    protocol: Protocol
    runs: dict[str, RunSpec]
    tables: dict[str, TableSpec] = dataclasses.field(default_factory=dict)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    def select(self, only: list[str] | None) -> list[RunSpec]:
        if not only:
            return list(self.runs.values())
        missing = [name for name in only if name not in self.runs]
        if missing:
            raise ConfigError(
                f"{self.path}: no run named {missing[0]!r}; runs: {', '.join(self.runs)}"
            )
        return [self.runs[name] for name in only]

    def pretrainings(self, runs: list[RunSpec]) -> list[PretrainSpec]:
        """The distinct pretraining runs that `runs` start from, each once."""
        seen: dict[str, PretrainSpec] = {}
        for run in runs:
            if run.pretraining is not None:
                seen.setdefault(run.pretraining.name, run.pretraining)
        return list(seen.values())
