"""Suite files: a shared `[protocol]` and named `[runs.*]` that may override any protocol key.

    [suite]
    description = "..."
    [protocol]            # data, model, schedule, subsets, seed
    [protocol.train_attack]
    [runs.P1F4]
    pretrain = "none"
    finetune = "F4"
    epochs = 20           # per-run override of a protocol key

Everything is validated when the file is read, so a typo fails in a second, not after an hour.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robench.config.typed import build, merge
from robench.epsilon import parse_eps
from robench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FINETUNE_SCENARIOS = {
    # name: (trunk frozen?, adversarial?) — the paper's Table 2.
    "F1": (True, False),
    "F2": (True, True),
    "F3": (False, False),
    "F4": (False, True),
}
SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"


@dataclass(frozen=True)
class AttackConfig:
    """An L-inf/L2 PGD attack; eps and step size as fractions of the [0, 1] range ("8/255")."""

    eps: str = "8/255"
    step_size: str = "2/255"
    steps: int = 10
    restarts: int = 1
    norm: str = "linf"
    bn_mode: str = "eval"

    def __post_init__(self) -> None:
        parse_eps(self.eps)
        parse_eps(self.step_size)
        if self.steps < 0 or self.restarts < 1:
            raise ConfigError(
                f"attack needs steps >= 0 and restarts >= 1, got {self.steps}, {self.restarts}"
            )
        if self.norm not in ("linf", "l2"):
            raise ConfigError(f"attack norm {self.norm!r} must be 'linf' or 'l2'")
        if self.bn_mode not in ("eval", "train"):
            raise ConfigError(f"attack bn_mode {self.bn_mode!r} must be 'eval' or 'train'")

    @property
    def eps_value(self) -> float:
        return parse_eps(self.eps)

    @property
    def step_value(self) -> float:
        return parse_eps(self.step_size)


@dataclass(frozen=True)
class Protocol:
    """Everything that determines a run's numbers. Defaults are the paper's (PROTOCOL.md)."""

    data: str = "cifar10"
    model: str = "preact_resnet50v2"
    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    # Fractions of `epochs` where lr is multiplied by lr_gamma: the paper's 30 and 50 of 100.
    lr_milestones: tuple[float, ...] = (0.3, 0.5)
    lr_gamma: float = 0.1
    seed: int = 0
    val_fraction: float = 0.1
    train_subset: int | None = None
    val_subset: int | None = None
    # Validation RA is measured on the first `val_ra_subset` validation images each epoch.
    val_ra_subset: int | None = 1000
    # Test images for evaluation: the first eval_n in the official order; unset = all.
    eval_n: int | None = None
    eval_batch_size: int = 500
    train_attack: AttackConfig = field(default_factory=AttackConfig)
    val_attack: AttackConfig = field(default_factory=lambda: AttackConfig(steps=20))
    # CUDA fast path (ignored on CPU): bf16 autocast, channels_last, torch.compile.
    amp: bool = True
    channels_last: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        for name in ("train_subset", "val_subset", "val_ra_subset", "eval_n"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError("need lr > 0, weight_decay >= 0 and 0 <= momentum < 1")
        if any(not 0 < m <= 1 for m in self.lr_milestones):
            raise ConfigError(f"lr_milestones are fractions in (0, 1]: {self.lr_milestones}")

    def milestone_epochs(self) -> list[int]:
        """Milestones scaled to this run's epoch count (30, 50 of 100 -> 6, 10 of 20)."""
        return sorted({max(1, round(m * self.epochs)) for m in self.lr_milestones})


@dataclass(frozen=True)
class RunSpec:
    name: str
    pretrain: str
    finetune: str
    protocol: Protocol

    @property
    def pretext(self) -> str:
        return "none" if self.pretrain == "none" else self.pretrain.split(":", 1)[1]

    @property
    def scenario(self) -> str:
        p = {"none": "P1", "std": "P2", "adv": "P3"}[self.pretrain.split(":", 1)[0]]
        return f"{p}{self.finetune}"

    @property
    def adversarial(self) -> bool:
        return FINETUNE_SCENARIOS[self.finetune][1]

    @property
    def frozen_trunk(self) -> bool:
        return FINETUNE_SCENARIOS[self.finetune][0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pretrain": self.pretrain,
            "finetune": self.finetune,
            "pretext": self.pretext,
            "scenario": self.scenario,
            "protocol": dataclasses.asdict(self.protocol),
        }


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    path: str
    sha256: str
    protocol: Protocol
    runs: dict[str, RunSpec]

    def select(self, only: list[str] | None) -> list[RunSpec]:
        if not only:
            return list(self.runs.values())
        missing = [name for name in only if name not in self.runs]
        if missing:
            raise ConfigError(
                f"{self.path}: no run named {missing[0]!r}; runs: {', '.join(self.runs)}"
            )
        return [self.runs[name] for name in only]


def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A path to a TOML file, or the name of a suite shipped in `suites/` ("quick")."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SUITES_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.toml"))) or "(none)"
    raise ConfigError(
        f"suite {str(name_or_path)!r} not found: not a file, nor a shipped suite ({known})"
    )


def load_suite(name_or_path: str | Path) -> Suite:
    path = resolve_suite_path(name_or_path)
    raw = path.read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    where = str(path)
    unknown = sorted(set(doc) - {"suite", "protocol", "runs"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown top-level table {unknown[0]!r} (suite, protocol, runs)"
        )
    meta = doc.get("suite", {})
    bad_meta = sorted(set(meta) - {"name", "description"})
    if bad_meta:
        raise ConfigError(
            f"{where}: suite.{bad_meta[0]}: unknown key; valid keys: description, name"
        )
    base = doc.get("protocol", {})
    protocol = build(Protocol, base, f"{where}: protocol")
    runs_table = doc.get("runs", {})
    if not runs_table:
        raise ConfigError(f"{where}: no [runs.<name>] tables; a suite needs at least one run")
    runs = {name: _build_run(name, table, base, where) for name, table in runs_table.items()}
    return Suite(
        name=str(meta.get("name", path.stem)),
        description=str(meta.get("description", "")),
        path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        protocol=protocol,
        runs=runs,
    )


def _build_run(name: str, table: Any, base: dict[str, Any], where: str) -> RunSpec:
    at = f"{where}: runs.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{at}: expected a table")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{at}: run names may hold letters, digits, '-' and '_' only")
    table = dict(table)
    pretrain = table.pop("pretrain", "none")
    finetune = table.pop("finetune", None)
    if finetune not in FINETUNE_SCENARIOS:
        raise ConfigError(f"{at}.finetune: must be one of F1, F2, F3, F4, got {finetune!r}")
    _check_pretrain(pretrain, finetune, at)
    protocol = build(Protocol, merge(base, table), at)
    return RunSpec(name=name, pretrain=pretrain, finetune=finetune, protocol=protocol)


def _check_pretrain(pretrain: Any, finetune: str, at: str) -> None:
    if pretrain == "none":
        if FINETUNE_SCENARIOS[finetune][0]:
            raise ConfigError(
                f"{at}: {finetune} freezes a pretrained trunk, but pretrain = 'none' "
                f"(end-to-end training is F3 or F4)"
            )
        return
    from robench.pretext import PRETEXTS  # late import: pretext tasks register themselves

    mode, _, task = str(pretrain).partition(":")
    if mode not in ("std", "adv") or not task:
        raise ConfigError(
            f"{at}.pretrain: expected 'none', 'std:<task>' or 'adv:<task>', got {pretrain!r}"
        )
    if task not in PRETEXTS:
        valid = ", ".join(PRETEXTS.names()) or "none implemented yet"
        raise ConfigError(f"{at}.pretrain: unknown pretext task {task!r} (valid: {valid})")
