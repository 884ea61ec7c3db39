"""Suite files and their typed, validated configuration."""

from robench.config.protocol import AttackConfig, PretrainProtocol, Protocol
from robench.config.suite import (
    FINETUNE_SCENARIOS,
    PretrainSpec,
    RunSpec,
    Suite,
    load_suite,
    resolve_suite_path,
)

__all__ = [
    "FINETUNE_SCENARIOS",
    "AttackConfig",
    "PretrainProtocol",
    "PretrainSpec",
    "Protocol",
    "RunSpec",
    "Suite",
    "load_suite",
    "resolve_suite_path",
]
