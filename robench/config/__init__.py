"""Suite files and their typed, validated configuration."""

from robench.config.suite import (
    FINETUNE_SCENARIOS,
    AttackConfig,
    Protocol,
    RunSpec,
    Suite,
    load_suite,
    resolve_suite_path,
)

__all__ = [
    "FINETUNE_SCENARIOS",
    "AttackConfig",
    "Protocol",
    "RunSpec",
    "Suite",
    "load_suite",
    "resolve_suite_path",
]
