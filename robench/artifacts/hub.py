"""Finding an exported model again and loading it: a local folder, or the Hugging Face Hub.

`hf-hub:ORG/NAME[@REV]` goes through huggingface_hub: a snapshot already in the Hub cache
(`$HF_HUB_CACHE`, default ~/.cache/huggingface/hub) is used as it is, without the network;
otherwise it is downloaded where the network allows, and where it does not, one line says
what to do. Loading checks every key and shape, like every robench checkpoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from torch import nn

from robench.errors import CheckpointError, RobenchError

HUB_PREFIX = "hf-hub:"
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_artifact(path: Path) -> bool:
    """Whether `path` is an exported model folder (config.json of robench's format)."""
    from robench.artifacts.export import ARTIFACT_FORMAT

    config = Path(path) / "config.json"
    try:
        return config.is_file() and json.loads(config.read_text()).get("format") == ARTIFACT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def resolve(source: str | Path) -> Path:
    """The local folder of an exported model: `source` itself, or its Hub snapshot."""
    text = str(source)
    if not text.startswith(HUB_PREFIX):
        path = Path(text)
        if not is_artifact(path):
            raise RobenchError(f"{path} is not an exported robench model (no config.json of one)")
        return path
    repo, _, revision = text[len(HUB_PREFIX) :].partition("@")
    if not REPO_ID.match(repo):
        raise RobenchError(f"{text}: a Hub id looks like hf-hub:ORG/NAME or hf-hub:ORG/NAME@REV")
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(repo, revision=revision or None, local_files_only=True)
    except Exception:  # not in the cache: try the network
        try:
            folder = snapshot_download(repo, revision=revision or None)
        except Exception as exc:
            raise RobenchError(
                f"{text}: not in the Hub cache and not downloadable here "
                f"({type(exc).__name__}); download it where the network allows "
                f"(`hf download {repo}`) and copy the cache ($HF_HUB_CACHE), or pass an "
                "exported folder's path"
            ) from None
    if not is_artifact(Path(folder)):
        raise RobenchError(f"{text} is not an exported robench model (no config.json of one)")
    return Path(folder)


def load_artifact(folder: Path) -> nn.Module:
    """The model of an exported folder, in eval mode on the CPU; with --trunk-only, its trunk."""
    from robench.models import create
    from robench.runs.checkpoint import (
        MODEL_PREFIX,
        check_state_matches,
        load_checkpoint,
        load_model_checkpoint,
    )

    config = json.loads((folder / "config.json").read_text())
    stem = folder / "model"
    if not config.get("trunk_only"):
        model, _ = load_model_checkpoint(stem)
        return model.eval()
    tensors, meta = load_checkpoint(stem)
    try:
        model = create(str(meta.get("architecture")), num_classes=int(meta.get("num_classes", 10)))
    except (RobenchError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder}: cannot rebuild its architecture ({exc})") from None
    prefix = MODEL_PREFIX + "trunk."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    check_state_matches(model.trunk.state_dict(), state, str(stem.with_suffix(".safetensors")))
    model.trunk.load_state_dict(state, strict=True)
    return model.trunk.eval()
