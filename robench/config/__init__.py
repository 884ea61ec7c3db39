"""Suite files and their typed, validated configuration (layer 1; only the suite checks reach
up, late, to the pretext and model registries they validate names against).

choices.py   the closed sets (norm, BN mode, scenario, pretraining mode, checkpoint) as Literals
typed.py     the typed builder: TOML/JSON tables -> frozen dataclasses, unknown keys refused
protocol.py  AttackConfig, AttackSpec, CrossCheckConfig, Protocol, PretrainProtocol, RuntimeConfig
specs.py     PretrainSpec, RunSpec, Suite
suite.py     load_suite: a suite file -> Suite, validated
tasks.py     pretext tasks named in a suite: known, their options, a sane size (meta device)
tables.py    [tables.*]: which runs make which rows of Tables 5-8 and Figure 3
"""

from robench.config.protocol import (
    AttackConfig,
    AttackSpec,
    CrossCheckConfig,
    PretrainProtocol,
    Protocol,
    RuntimeConfig,
)
from robench.config.specs import (
    ENSEMBLE,
    FINETUNE_SCENARIOS,
    PAPER_PRETEXTS,
    PRETRAIN_MODES,
    PretrainSpec,
    RunSpec,
    Suite,
)
from robench.config.suite import load_suite, resolve_suite_path

__all__ = [
    "ENSEMBLE",
    "FINETUNE_SCENARIOS",
    "PAPER_PRETEXTS",
    "PRETRAIN_MODES",
    "AttackConfig",
    "AttackSpec",
    "CrossCheckConfig",
    "PretrainProtocol",
    "PretrainSpec",
    "Protocol",
    "RunSpec",
    "RuntimeConfig",
    "Suite",
    "load_suite",
    "resolve_suite_path",
]
