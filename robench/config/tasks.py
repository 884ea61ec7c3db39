"""Pretext tasks named in a suite: known to the registry, options it accepts, a sane size.

The checks run when the suite is read, so a typo or an absurd transformer fails in a second
instead of after an hour of pretraining: a task's head is built on the meta device (no memory
is allocated), which runs its own checks and gives its parameter count.
"""

from __future__ import annotations

import functools
import inspect
import json

from robench.config.protocol import PretrainProtocol
from robench.config.specs import ENSEMBLE
from robench.errors import ConfigError


def check_task(task: str, at: str, *, allow_ensemble: bool = False) -> None:
    from robench.pretext import PRETEXTS  # late import: tasks import models, not config

    if task not in PRETEXTS and not (allow_ensemble and task == ENSEMBLE):
        valid = [*PRETEXTS.names(), *([ENSEMBLE] if allow_ensemble else [])]
        raise ConfigError(f"{at}: unknown pretext task {task!r} (valid: {', '.join(valid)})")


def check_task_options(protocol: PretrainProtocol, at: str) -> None:
    from robench.pretext import PRETEXTS

    for task, options in protocol.task_options.items():
        check_task(task, f"{at}.task_options")
        params = inspect.signature(PRETEXTS.get(task)).parameters
        unknown = sorted(set(options) - (set(params) - {"backbone"}))
        if unknown:
            valid = ", ".join(sorted(set(params) - {"backbone"})) or "(none)"
            raise ConfigError(
                f"{at}.task_options.{task}.{unknown[0]}: unknown option; valid: {valid}"
            )
        try:
            _check_task_size(task, json.dumps(options, sort_keys=True), str(protocol.model))
        except ConfigError as exc:
            raise ConfigError(f"{at}.task_options.{task}: {exc}") from None


MAX_TASK_PARAMETERS = 10**9  # a pretext head beyond this is a typo, not a model to allocate


@functools.lru_cache(maxsize=64)
def _check_task_size(task: str, options_json: str, model: str) -> None:
    """Build the task on the meta device (no memory): its own checks run, its size is known.

    Cached: a suite's pretrainings mostly share their task options.
    """
    import torch

    from robench.models import create
    from robench.pretext import PRETEXTS

    options = json.loads(options_json)
    if any(isinstance(v, int) and not isinstance(v, bool) and v > 10**7 for v in options.values()):
        raise ConfigError(f"{options} asks for an absurd size")
    try:
        with torch.device("meta"):
            head = PRETEXTS.get(task)(create(model), **options)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(str(exc)) from None
    size = sum(p.numel() for p in head.parameters())
    if size > MAX_TASK_PARAMETERS:
        raise ConfigError(
            f"the {task} head would have {size:.3g} parameters (limit "
            f"{MAX_TASK_PARAMETERS:.0e}); check its sizes"
        )
