"""Trained models as shareable artifacts: a Hugging Face Hub-style folder per model.

export.py writes it from a run directory (weights, config, a model card with the board rows),
card.py writes the card, hub.py finds a folder again (local, or `hf-hub:ORG/NAME[@REV]` through
huggingface_hub) and loads it into a ready model.
"""

from robench.artifacts.export import ARTIFACT_FORMAT, export_run
from robench.artifacts.hub import load_artifact, resolve

__all__ = ["ARTIFACT_FORMAT", "export_run", "load_artifact", "resolve"]
