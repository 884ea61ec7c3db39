"""The pretext-task registry. Importing the task modules registers them."""

from __future__ import annotations

from typing import Any

from robench.models import Classifier
from robench.pretext.base import PretextTask
from robench.registry import Registry

PRETEXTS: Registry[PretextTask] = Registry("pretext task")


def create_task(name: str, backbone: Classifier, **config: Any) -> PretextTask:
    """Build task `name`'s head for `backbone` (heads are sized from the backbone's trunk)."""
    return PRETEXTS.create(name, backbone=backbone, **config)
