"""A run directory's config.json as a typed, versioned record: the one reader of it.

A record says what a run is (its suite entry, typed: `RunSpec` for a fine-tuning run,
`PretrainSpec` for a pretraining), what it trained on (`DataRecord`), which suite file it came
from, and the rest of what was recorded (runtime, inherited trunk, task config, versions) as
plain sections. Every reader (evaluation targets, the transfer analysis, paper tables,
resuming) goes through `read_record`, so a field is parsed, typed and checked once.

Records carry `record_version`. Version 1 (before the field existed) recorded the CUDA
fast-path keys (amp, channels_last, compile) inside the run protocol; they moved to the
suite's [runtime] table, and `_upgrade` drops them. Keys a record lacks take their defaults,
so run directories made before a key existed still resume, skip and evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robench.config import PretrainSpec, RunSpec
from robench.config.choices import RecordKind
from robench.config.protocol import RUNTIME_KEYS
from robench.config.typed import build
from robench.errors import ConfigError, RobenchError

RECORD_VERSION = 2
SPEC_SECTION: dict[str, str] = {"finetune": "run", "pretrain": "pretraining"}


@dataclass(frozen=True)
class DataRecord:
    """The data a run trained on; `content_hash` pins the decoded pixels."""

    dataset: str
    is_jpeg_copy: bool
    content_hash: str
    train: int
    val: int
    source: str | None = None
    root: str | None = None
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuiteRef:
    """The suite file a run was trained from."""

    name: str
    path: str
    sha256: str


@dataclass(frozen=True)
class RunRecord:
    """What config.json says about one run (fine-tuning or pretraining)."""

    kind: RecordKind
    spec: RunSpec | PretrainSpec
    data: DataRecord
    suite: SuiteRef | None = None
    sections: dict[str, Any] = field(default_factory=dict)  # runtime, versions, ...
    version: int = RECORD_VERSION

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def run(self) -> RunSpec:
        """The fine-tuning spec (an error for a pretraining record)."""
        if not isinstance(self.spec, RunSpec):
            raise RobenchError(f"{self.name} is a pretraining run, not a fine-tuned model")
        return self.spec

    def to_json(self) -> dict[str, Any]:
        return {
            **self.sections,
            "record_version": RECORD_VERSION,
            SPEC_SECTION[self.kind]: self.spec.to_dict(),
            "suite": None if self.suite is None else vars(self.suite),
            "data": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.data).items()},
        }


def parse_record(doc: dict[str, Any], where: str) -> RunRecord:
    """A record from config.json's parsed JSON; a one-line error naming `where` if it is bad."""
    doc = _upgrade(dict(doc), where)
    version = int(doc.pop("record_version"))
    kind = next((k for k, section in SPEC_SECTION.items() if section in doc), None)
    if kind is None:
        raise RobenchError(f"{where}: neither a fine-tuning nor a pretraining run record")
    section = doc.pop(SPEC_SECTION[kind])
    try:
        spec: RunSpec | PretrainSpec = (
            RunSpec.from_dict(section, f"{where}: run")
            if kind == "finetune"
            else build(PretrainSpec, section, f"{where}: pretraining")
        )
        data = build(DataRecord, doc.pop("data", {}), f"{where}: data")
        suite_doc = doc.pop("suite", None)
        suite = None if suite_doc is None else build(SuiteRef, suite_doc, f"{where}: suite")
    except ConfigError as exc:
        raise RobenchError(f"unreadable run record: {exc}") from None
    return RunRecord(kind, spec, data, suite, doc, version)  # type: ignore[arg-type]


def _upgrade(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """Bring an older record to RECORD_VERSION (each step documented in the module docstring)."""
    version = doc.get("record_version", 1)
    if not isinstance(version, int) or not 1 <= version <= RECORD_VERSION:
        raise RobenchError(
            f"{where}: record_version {version!r} is not one this robench reads "
            f"(1..{RECORD_VERSION}); a newer robench wrote it"
        )
    if version == 1 and isinstance(doc.get("run"), dict):
        run = dict(doc["run"])
        run["protocol"] = {
            k: v for k, v in dict(run.get("protocol", {})).items() if k not in RUNTIME_KEYS
        }
        doc["run"] = run
    doc["record_version"] = version
    return doc
