"""Suite files and their typed, validated configuration."""

from robench.config.protocol import AttackConfig, PretrainProtocol, Protocol
from robench.config.suite import (
    ENSEMBLE,
    FINETUNE_SCENARIOS,
    PRETRAIN_MODES,
    PretrainSpec,
    RunSpec,
    Suite,
    load_suite,
    resolve_suite_path,
)

__all__ = [
    "ENSEMBLE",
    "FINETUNE_SCENARIOS",
    "PRETRAIN_MODES",
    "AttackConfig",
    "PretrainProtocol",
    "PretrainSpec",
    "Protocol",
    "RunSpec",
    "Suite",
    "load_suite",
    "resolve_suite_path",
]
