"""Model registry: `create(name, num_classes)` builds any registered architecture.

Importing the architecture modules here registers them, so `MODELS.names()` is complete.
"""

from robench.models import preact_resnet as _preact_resnet  # noqa: F401  (registers models)
from robench.models.classifier import (
    ROTATION_HEAD,
    Classifier,
    ClassifierHead,
    Normalize,
    attach_rotation_head,
)
from robench.models.registry import MODELS, create

__all__ = [
    "MODELS",
    "ROTATION_HEAD",
    "Classifier",
    "ClassifierHead",
    "Normalize",
    "attach_rotation_head",
    "create",
]
