"""The closed sets of the configuration, each spelled once as a `Literal`.

The typed builder (typed.py) checks values against these when a suite or a run record is read,
so below the config boundary a norm, a BatchNorm mode or a scenario is always one of them.
"""

from __future__ import annotations

from typing import Literal, get_args

Norm = Literal["linf", "l2"]
BNMode = Literal["eval", "train"]  # the model's mode while an attack crafts its examples
Finetune = Literal["F1", "F2", "F3", "F4"]  # the paper's Table 2
PretrainMode = Literal["std", "adv", "smooth"]  # P2, P3, PS
CheckpointName = Literal["best_ta", "best_ra", "last"]
RecordKind = Literal["finetune", "pretrain"]


def choices(literal: object) -> tuple[str, ...]:
    """The values a `Literal` admits, in order."""
    return tuple(get_args(literal))
