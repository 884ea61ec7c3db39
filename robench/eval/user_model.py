"""Your own model: `FILE.py:FACTORY` and a weights file, loaded without running pickled code.

The factory is imported from the file and called (whatever it raises, including `sys.exit`,
is one line); the weights are a state dict in safetensors or a torch file read with
`weights_only=True`, checked key by key and shape by shape against the model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robench.errors import CheckpointError, ConfigError


def import_factory(spec: str) -> tuple[Any, Path]:
    path_text, sep, attr = spec.rpartition(":")
    if not sep or not path_text or not attr:
        raise ConfigError(f"--model {spec!r} must look like FILE.py:FACTORY")
    path = Path(path_text)
    if not path.is_file():
        raise ConfigError(f"--model: {path} does not exist")
    module_name = f"robench_user_model_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ConfigError(f"--model: cannot import {path} (not a Python file?)")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # sys.exit() at import is the user's code too
        raise ConfigError(
            f"--model: importing {path} failed ({type(exc).__name__}: {exc})"
        ) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"--model: {path} has no callable {attr!r}")
    return factory, path


def load_state_dict_file(model: nn.Module, weights: Path) -> None:
    """A plain state dict, or one under `state_dict` / `model`; never unpickles code."""
    if not weights.is_file():
        raise CheckpointError(f"--weights {weights} does not exist")
    if weights.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            payload: Any = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{weights}: corrupt safetensors file ({exc})") from None
    else:
        try:
            with warnings.catch_warnings():  # the refusal below is the message, not torch's
                warnings.simplefilter("ignore")
                payload = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle.UnpicklingError, EOFError, RuntimeError, ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CheckpointError(
                f"{weights}: refused or unreadable ({type(exc).__name__}: {first[:160]}); "
                "robench loads weights with weights_only=True and never runs pickled code"
            ) from None
    if isinstance(payload, dict):
        for key in ("state_dict", "model"):
            if key in payload and isinstance(payload[key], dict):
                payload = payload[key]
                break
    if not isinstance(payload, dict) or not all(
        isinstance(v, torch.Tensor) for v in payload.values()
    ):
        raise CheckpointError(f"{weights} holds no state dict of tensors")
    payload = {k.removeprefix("module."): v for k, v in payload.items()}  # DataParallel saves
    expected = model.state_dict()
    missing = sorted(set(expected) - set(payload))
    unexpected = sorted(set(payload) - set(expected))
    shapes = [k for k in expected if k in payload and payload[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{weights} does not fit the model: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(shapes)} with other shapes (e.g. {shapes[:3]})"
        )
    model.load_state_dict(payload, strict=True)
