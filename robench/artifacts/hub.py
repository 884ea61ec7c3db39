"""Finding an exported model again and loading it: a local folder, or the Hugging Face Hub.

`hf-hub:ORG/NAME[@REV]` goes through huggingface_hub: a snapshot already in the Hub cache
(`$HF_HUB_CACHE`, default ~/.cache/huggingface/hub) is used as it is, without the network;
otherwise it is downloaded where the network allows, and where it does not, one line says
what to do. Loading checks every key and shape, like every robench checkpoint.

A suite fine-tunes from an exported trunk with `pretrain = "trunk:PATH_OR_ID"`: `describe_trunk`
says what it is when the suite is read (recorded in the run), `trunk_state` hands the training
stage its tensors, checked against what was recorded.
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


def describe_trunk(source: str, base_dir: Path) -> dict[str, str]:
    """What an exported model's trunk is: source (a relative folder is taken from `base_dir`,
    the suite's folder), pretext, origin (the scenario it came from), architecture, and the
    SHA-256 of its weights file."""
    from robench.runs.identity import file_sha256

    if not source.startswith(HUB_PREFIX):
        path = Path(source).expanduser()
        source = str(path if path.is_absolute() else (base_dir / path).resolve())
    folder = resolve(source)
    config = json.loads((folder / "config.json").read_text())
    return {
        "source": source,
        "pretext": str(config.get("pretext")),
        "origin": str(config.get("scenario")),
        "architecture": str(config.get("architecture")),
        "weights_sha256": file_sha256(folder / "model.safetensors"),
    }


def trunk_state(source: str, architecture: str, weights_sha256: str) -> dict:
    """The trunk tensors of an exported model (whole or --trunk-only), keyed as the trunk's
    state dict; refused if the weights are not the ones the run recorded or not `architecture`.
    """
    from robench.runs.checkpoint import MODEL_PREFIX, load_checkpoint
    from robench.runs.identity import file_sha256

    folder = resolve(source)
    weights = folder / "model.safetensors"
    if file_sha256(weights) != weights_sha256:
        raise CheckpointError(
            f"{weights} is not the trunk this run recorded (its SHA-256 changed): train the "
            "run again under a new name, or restore that file"
        )
    tensors, meta = load_checkpoint(folder / "model")
    if meta.get("architecture") != architecture:
        raise CheckpointError(
            f"{source}: a trunk of {meta.get('architecture')!r}, the run is {architecture!r}"
        )
    prefix = MODEL_PREFIX + "trunk."
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not state:
        raise CheckpointError(f"{source}: holds no trunk weights (no '{prefix}*' keys)")
    return state
