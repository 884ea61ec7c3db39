"""RobustBench's model zoo through the `robustbench` package (the optional extra).

robustbench supplies each zoo model's architecture, the checkpoint's place
(`MODEL_DIR/cifar10/<Linf|L2>/<NAME>.pt`, its own convention) and, where the file is missing,
its download from Google Drive. robench loads the file itself, the way it loads every
checkpoint: `weights_only=True` (no pickled code runs), the `module.` / `model.` prefixes
robustbench strips, then every key and shape checked. robustbench's own `load_model` falls
back to `strict=False` for about 25 named models; the only keys robench lets a checkpoint lack
are the normalisation constants those models set in their constructors (`mu`, `sigma`,
`mean`, `std`), which are kept from the constructor and named in the row's notes.

Two quirks of robustbench 1.1.1 on PyPI are handled here, once: it imports `autoattack`, the
module name of AutoAttack's GitHub package, while it depends on PyPI's `pyautoattack` (the
same code under another name), so `autoattack` is aliased to `pyautoattack` when it is not
installed; and it imports `pkg_resources`, which setuptools 81 removed (the extra pins
setuptools below 81).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robench.errors import CheckpointError, RobenchError

THREAT_MODELS = ("Linf", "L2")
INSTALL = (
    "pip install -e '.[robustbench]' (from a checkout; else pip install 'robench[robustbench]')"
)
# Buffers set by the constructor that some zoo checkpoints lack (robustbench's own list).
CONSTRUCTOR_CONSTANTS = ("mu", "sigma", "mean", "std", "normalize.mean", "normalize.std")


@dataclass(frozen=True)
class ZooModel:
    """A loaded zoo model and what robench records about it."""

    model: nn.Module
    name: str
    threat_model: str
    checkpoint: Path
    robustbench_version: str
    kept_constants: tuple[str, ...]  # buffers the checkpoint lacked, kept from the constructor


def robustbench_modules() -> tuple[Any, Any]:
    """robustbench's model table and utilities; one line naming the install when it is absent."""
    try:
        import pyautoattack
        import pyautoattack.state

        if importlib.util.find_spec("autoattack") is None:  # see the module's docstring
            sys.modules.setdefault("autoattack", pyautoattack)
            sys.modules.setdefault("autoattack.state", pyautoattack.state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its imports warn about deprecated torch/timm APIs
            from robustbench import utils
            from robustbench.model_zoo import model_dicts
    except ImportError as exc:
        raise RobenchError(
            f"the RobustBench bridge needs the robustbench extra ({exc.name or exc} is missing): "
            f"{INSTALL}"
        ) from None
    return model_dicts, utils


def zoo_entry(name: str, threat_model: str) -> dict[str, Any]:
    """The zoo's entry of a CIFAR-10 model: its constructor and Google Drive id."""
    if threat_model not in THREAT_MODELS:
        raise RobenchError(f"--threat-model {threat_model!r} must be one of Linf, L2")
    model_dicts, _ = robustbench_modules()  # first: it makes robustbench importable
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    models = model_dicts[BenchmarkDataset.cifar_10][ThreatModel(threat_model)]
    if name not in models:
        close = sorted(n for n in models if n.lower().startswith(name.lower()[:4]))[:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise RobenchError(
            f"RobustBench has no CIFAR-10 {threat_model} model {name!r}{hint}; "
            "`robench leaderboard robustbench` lists them"
        )
    entry = models[name]
    if isinstance(entry["gdrive_id"], list) or entry["gdrive_id"] is None:
        raise RobenchError(
            f"{name}: an ensemble (or timm-hosted) zoo model; the bridge loads single checkpoints"
        )
    return entry


def checkpoint_path(model_dir: Path, name: str, threat_model: str) -> Path:
    """Where robustbench keeps (and looks for) the checkpoint."""
    return Path(model_dir) / "cifar10" / threat_model / f"{name}.pt"


def load_zoo_model(name: str, threat_model: str, model_dir: Path) -> ZooModel:
    """A zoo model with its checkpoint from `model_dir`, downloaded there if it is missing."""
    import importlib.metadata

    entry = zoo_entry(name, threat_model)
    path = checkpoint_path(model_dir, name, threat_model)
    if not path.is_file():
        _download(entry["gdrive_id"], path, name)
    model = entry["model"]()
    state = _state_dict(path, name)
    kept = _keep_constructor_constants(model, state)
    from robench.runs.checkpoint import check_state_matches

    check_state_matches(model.state_dict(), state, str(path))
    model.load_state_dict(state, strict=True)
    return ZooModel(
        model=model.eval(),
        name=name,
        threat_model=threat_model,
        checkpoint=path,
        robustbench_version=importlib.metadata.version("robustbench"),
        kept_constants=kept,
    )


def _download(gdrive_id: str, path: Path, name: str) -> None:
    """robustbench's download (gdown) into a temporary name, renamed when complete."""
    _, utils = robustbench_modules()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")  # two processes: two files
    try:
        utils.download_gdrive_new(gdrive_id, str(partial))
        if not partial.is_file():
            raise OSError("nothing was downloaded")
    except Exception as exc:  # gdown, requests: no network, quota, a moved file
        partial.unlink(missing_ok=True)
        raise RobenchError(
            f"RobustBench checkpoint {name} is not at {path} and could not be downloaded "
            f"({type(exc).__name__}); download https://drive.google.com/uc?id={gdrive_id} "
            f"where the network allows and put it at {path}"
        ) from None
    partial.replace(path)


def _state_dict(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, EOFError, RuntimeError, ...
        raise CheckpointError(
            f"{path}: refused or unreadable ({type(exc).__name__}); robench loads zoo "
            "checkpoints with weights_only=True and never runs pickled code"
        ) from None
    takes_last = "Kireev2021Effectiveness" in name or name == "Andriushchenko2020Understanding"
    if takes_last and isinstance(payload, dict) and isinstance(payload.get("last"), dict):
        payload = payload["last"]  # as robustbench: the last of {'last', 'best'}
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not isinstance(payload, dict) or not all(
        isinstance(v, torch.Tensor) for v in payload.values()
    ):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return {_strip(_strip(k, "module."), "model."): v for k, v in payload.items()}


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def _keep_constructor_constants(
    model: nn.Module, state: dict[str, torch.Tensor]
) -> tuple[str, ...]:
    """Fill in the constructor's normalisation buffers a checkpoint lacks; their names."""
    buffers = dict(model.named_buffers())
    kept = tuple(k for k in CONSTRUCTOR_CONSTANTS if k in buffers and k not in state)
    for key in kept:
        state[key] = buffers[key]
    return kept
