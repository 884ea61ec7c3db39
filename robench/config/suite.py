"""Suite files: protocols, pretraining runs and fine-tuning runs, validated on reading.

    [suite]
    description = "..."
    [protocol]                 # fine-tuning: data, model, schedule, subsets, seed
    [protocol.train_attack]
    [pretrain_protocol]        # self-supervised pretraining defaults
    [runtime]                  # optional: the CUDA fast path (amp, channels_last, compile)
    [pretraining.adv-rotation] # optional: a named pretraining run with overrides
    task = "rotation"
    mode = "adv"
    [runs.rotation-P3F4]
    pretrain = "adv:rotation"  # none | std:<task> | adv:<task> | smooth:<task>
    finetune = "F4"            # F1..F4 (paper Table 2)
    epochs = 20                # per-run override of a protocol key
    [tables.table5]            # optional: which run is which row of Tables 5-8 / Figure 3
    ap_dpe = "ensemble-dpe-P3F4"   # (robench/config/tables.py)

A run with pretrain = "<mode>:<task>" starts from the pretraining run named by its
`pretraining` key, by default "<mode>-<task>", declared or implied by [pretrain_protocol].
Modes: std (P2), adv (P3), smooth (PS: Gaussian-noise pretraining, the paper's Table 8).
The task may be "ensemble": the tasks of `ensemble_tasks` pretrain one shared trunk together
(paper Sec. 3.3, Table 5), with the diversity regulariser weighted by `diversity`.
A run with pretrain = "trunk:<folder or hf-hub:ORG/NAME[@REV]>" starts from an exported model's
trunk (`robench export`), checked key by key like a pretraining's.
Everything is validated when the file is read, so a typo fails in a second, not after an hour.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from pathlib import Path
from typing import Any

from robench.config.launcher import LauncherConfig
from robench.config.protocol import RUNTIME_KEYS, PretrainProtocol, Protocol, RuntimeConfig
from robench.config.specs import (
    ENSEMBLE,
    FINETUNE_SCENARIOS,
    PRETRAIN_MODES,
    TRUNK_MODE,
    PretrainSpec,
    RunSpec,
    Suite,
    TrunkSource,
)
from robench.config.tables import parse_tables
from robench.config.tasks import check_task, check_task_options
from robench.config.typed import build, merge
from robench.errors import ConfigError, RobenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"
RESERVED_RUN_NAMES = {"pretrain"}  # <out>/pretrain/ holds the pretraining runs


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
    sections = {
        "suite",
        "runtime",
        "protocol",
        "pretrain_protocol",
        "pretraining",
        "runs",
        "tables",
        "launcher",  # where the jobs run (config/launcher.py); not part of any run
    }
    unknown = sorted(set(doc) - sections)
    if unknown:
        raise ConfigError(
            f"{where}: unknown top-level table {unknown[0]!r} ({', '.join(sorted(sections))})"
        )
    meta = doc.get("suite", {})
    bad_meta = sorted(set(meta) - {"name", "description"})
    if bad_meta:
        raise ConfigError(f"{where}: suite.{bad_meta[0]}: unknown key; valid: description, name")
    runtime = build(RuntimeConfig, doc.get("runtime", {}), f"{where}: runtime")
    build(LauncherConfig, doc.get("launcher", {}), f"{where}: launcher")  # a typo fails now
    base = doc.get("protocol", {})
    _refuse_runtime_keys(base, f"{where}: protocol")
    protocol = build(Protocol, base, f"{where}: protocol")
    pretrain_base = doc.get("pretrain_protocol", {})
    build(PretrainProtocol, pretrain_base, f"{where}: pretrain_protocol")
    declared = doc.get("pretraining", {})
    runs_table = doc.get("runs", {})
    if not runs_table:
        raise ConfigError(f"{where}: no [runs.<name>] tables; a suite needs at least one run")
    runs = {
        name: _build_run(name, table, base, pretrain_base, declared, protocol, where)
        for name, table in runs_table.items()
    }
    return Suite(
        name=str(meta.get("name", path.stem)),
        description=str(meta.get("description", "")),
        path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        protocol=protocol,
        runs=runs,
        tables=parse_tables(doc.get("tables", {}), set(runs), where),
        runtime=runtime,
    )


def _refuse_runtime_keys(table: Any, at: str) -> None:
    """amp / channels_last / compile used to be protocol keys; say where they went."""
    if isinstance(table, dict):
        for key in RUNTIME_KEYS:
            if key in table:
                raise ConfigError(
                    f"{at}.{key}: runtime settings are suite-wide now: put {key} in the "
                    "suite's [runtime] table"
                )


def _check_name(name: str, at: str) -> None:
    if not name.replace("_", "").replace("-", "").isalnum() or name.startswith("-"):
        raise ConfigError(
            f"{at}: names may hold letters, digits, '-' and '_' only, and start with a letter, "
            "digit or '_'"
        )


def _build_run(
    name: str,
    table: Any,
    base: dict[str, Any],
    pretrain_base: dict[str, Any],
    declared: dict[str, Any],
    protocol: Protocol,
    where: str,
) -> RunSpec:
    at = f"{where}: runs.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{at}: expected a table")
    _check_name(name, at)
    if name in RESERVED_RUN_NAMES:
        raise ConfigError(f"{at}: {name!r} is reserved for the pretraining runs' folder")
    _refuse_runtime_keys(table, at)
    table = dict(table)
    pretrain = table.pop("pretrain", "none")
    pretraining_name = table.pop("pretraining", None)
    finetune = table.pop("finetune", None)
    if finetune not in FINETUNE_SCENARIOS:
        raise ConfigError(f"{at}.finetune: must be one of F1, F2, F3, F4, got {finetune!r}")
    run_protocol = build(Protocol, merge(base, table), at)
    if pretrain == "none":
        if FINETUNE_SCENARIOS[finetune][0]:
            raise ConfigError(
                f"{at}: {finetune} freezes a pretrained trunk, but pretrain = 'none' "
                f"(end-to-end training is F3 or F4)"
            )
        if pretraining_name is not None:
            raise ConfigError(f"{at}.pretraining: names a pretraining run but pretrain = 'none'")
        return RunSpec(name, "none", finetune, run_protocol)
    if run_protocol.auxiliary is not None:
        raise ConfigError(
            f"{at}.auxiliary: the one-shot baseline trains end to end (pretrain = 'none')"
        )
    if str(pretrain).startswith(TRUNK_MODE + ":"):
        if pretraining_name is not None:
            raise ConfigError(f"{at}.pretraining: a run with pretrain = 'trunk:...' has none")
        trunk = _trunk_source(str(pretrain)[len(TRUNK_MODE) + 1 :], run_protocol.model, at, where)
        return RunSpec(name, str(pretrain), finetune, run_protocol, trunk=trunk)
    mode, task = _parse_pretrain(pretrain, at)
    spec = _pretraining(
        pretraining_name or f"{mode}-{task}", mode, task, pretrain_base, declared, protocol, where
    )
    if (spec.mode, spec.task) != (mode, task):
        raise ConfigError(
            f"{at}: pretrain = {pretrain!r} but pretraining {spec.name!r} is "
            f"{spec.mode}:{spec.task}"
        )
    if spec.protocol.model != run_protocol.model:
        raise ConfigError(
            f"{at}: the model {run_protocol.model!r} cannot inherit the trunk of pretraining "
            f"{spec.name!r} ({spec.protocol.model!r})"
        )
    return RunSpec(name, f"{mode}:{task}", finetune, run_protocol, spec)


def _trunk_source(source: str, model: str, at: str, where: str) -> TrunkSource:
    """The exported trunk named by `pretrain = "trunk:SOURCE"`: a folder (relative to the suite
    file's) or hf-hub:ORG/NAME[@REV], read now so that a wrong one fails before training."""
    from robench.artifacts.hub import describe_trunk  # reads a folder or the Hub cache

    if not source:
        raise ConfigError(f"{at}.pretrain: 'trunk:' needs a folder or hf-hub:ORG/NAME after it")
    try:
        trunk = TrunkSource(**describe_trunk(source, Path(where).parent))
    except RobenchError as exc:
        raise ConfigError(f"{at}.pretrain: {exc}") from None
    if trunk.architecture != model:
        raise ConfigError(
            f"{at}: the model {model!r} cannot inherit the trunk of {source} "
            f"({trunk.architecture!r})"
        )
    return trunk


def _parse_pretrain(pretrain: Any, at: str) -> tuple[str, str]:
    mode, _, task = str(pretrain).partition(":")
    if mode not in PRETRAIN_MODES or not task:
        raise ConfigError(
            f"{at}.pretrain: expected 'none', 'std:<task>', 'adv:<task>', 'smooth:<task>' or "
            f"'trunk:<folder or hf-hub:ORG/NAME>', got {pretrain!r}"
        )
    check_task(task, f"{at}.pretrain", allow_ensemble=True)
    return mode, task


def _pretraining(
    name: str,
    mode: str,
    task: str,
    pretrain_base: dict[str, Any],
    declared: dict[str, Any],
    protocol: Protocol,
    where: str,
) -> PretrainSpec:
    at = f"{where}: pretraining.{name}"
    _check_name(name, at)
    implied = f"{mode}-{task}"
    if name not in declared and name != implied:  # a typo would train a new pretraining
        known = ", ".join(sorted(declared)) or "none"
        raise ConfigError(
            f"{at}: no [pretraining.{name}] table (declared: {known}); a pretraining that is "
            f"not declared must be the implied one, {implied!r}"
        )
    table = dict(declared.get(name, {"task": task, "mode": mode}))
    if not isinstance(declared.get(name, {}), dict):
        raise ConfigError(f"{at}: expected a table")
    declared_task = table.pop("task", None)
    declared_mode = table.pop("mode", None)
    if declared_mode not in PRETRAIN_MODES:
        raise ConfigError(
            f"{at}.mode: must be one of {', '.join(PRETRAIN_MODES)}, got {declared_mode!r}"
        )
    if not isinstance(declared_task, str):
        raise ConfigError(f"{at}.task: a pretext task name is required")
    check_task(declared_task, f"{at}.task", allow_ensemble=True)
    if declared_task == ENSEMBLE and declared_mode == "smooth":
        raise ConfigError(
            f"{at}: random smoothing pretrains one task (the paper's Table 8); "
            "an ensemble pretrains with mode 'std' or 'adv'"
        )
    resolved = build(PretrainProtocol, merge(pretrain_base, table), at)
    resolved = dataclasses.replace(
        resolved,
        model=resolved.model or protocol.model,
        data=resolved.data or protocol.data,
        seed=protocol.seed if resolved.seed is None else resolved.seed,
    )
    check_task_options(resolved, at)
    if declared_task == ENSEMBLE and declared_mode == "adv" and resolved.attack.restarts != 1:
        raise ConfigError(
            f"{at}.attack.restarts: the ensemble attack runs one restart (PGD-10 with a random "
            f"start, as the paper), got {resolved.attack.restarts}"
        )
    return PretrainSpec(name, declared_task, declared_mode, resolved)
