"""The model registry. Architectures register themselves with `@MODELS.register(name)`."""

from __future__ import annotations

from robench.models.classifier import Classifier
from robench.registry import Registry

MODELS: Registry[Classifier] = Registry("model")


def create(name: str, num_classes: int = 10) -> Classifier:
    """Build a freshly initialised model; an unknown name fails with the valid names."""
    model = MODELS.create(name, num_classes=num_classes)
    model.arch = name
    return model
