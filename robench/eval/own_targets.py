"""Models from elsewhere as evaluation targets: `FILE.py:FACTORY` plus weights, a model in
memory, or a RobustBench zoo model (through the `robustbench` extra, robench/models/).

Both are identified by what they compute with: the weights' tensors (the row's `model_id`),
together with the model code's file (`--model`) or its class (`robench.evaluate`), which key
the stored flags; so the same weights again resume and reuse their flags, and other weights
under the same name are another row. A zoo model's rows carry RobustBench's published clean
and AutoAttack accuracy beside robench's (robench/models/robustbench_published.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from robench.columns import check_row_name
from robench.data import ArrayDataset, load_test
from robench.errors import ConfigError
from robench.eval.targets import DEFAULT_BATCH_SIZE, EvalTarget, slug
from robench.eval.user_model import import_factory, load_state_dict_file
from robench.runs.identity import combined_sha256, file_sha256, short_id, tensors_sha256


def external_target(
    spec: str,
    weights: Path,
    *,
    data: str = "cifar10",
    data_dir: str | Path | None = None,
    n: int | None = None,
    name: str | None = None,
    state_root: Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> EvalTarget:
    """A model built by FACTORY in FILE.py, with a state dict from `weights`."""
    factory, file = import_factory(spec)
    try:
        model = factory()
    except (Exception, SystemExit) as exc:  # the user's code: one line, whatever it raised
        raise ConfigError(
            f"{spec}: calling the factory failed ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    load_state_dict_file(model, weights)
    test, info = load_test(data, data_dir, n=n)
    weights_hash = tensors_sha256(model.state_dict())
    name = check_row_name(name or weights.stem, "model name (--name, else the weights' file name)")
    return _own_model_target(
        model,
        name,
        test,
        info,
        architecture=f"{file.name}:{spec.rpartition(':')[2]}",
        checkpoint=weights.name,
        source=str(weights),
        model_hash=combined_sha256((file_sha256(file), weights_hash)),
        weights_hash=weights_hash,
        flag_root=state_root / "external",
        batch_size=batch_size,
    )


def memory_target(
    model: nn.Module,
    *,
    name: str = "model",
    data: str = "cifar10",
    data_dir: str | Path | None = None,
    n: int | None = None,
    state_root: Path,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> EvalTarget:
    """A model built in memory (a notebook's, `robench.evaluate`): identified by its class and
    its tensors, so the same weights again reuse their stored flags."""
    if not isinstance(model, nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(model).__name__}")
    name = check_row_name(name, "model name (name=)")
    test, info = load_test(data, data_dir, n=n)
    weights_hash = tensors_sha256(model.state_dict())
    architecture = f"{type(model).__module__}.{type(model).__qualname__}"
    return _own_model_target(
        model,
        name,
        test,
        info,
        architecture=architecture,
        checkpoint="in-memory",
        source="(in memory)",
        model_hash=combined_sha256((architecture, weights_hash)),
        weights_hash=weights_hash,
        flag_root=state_root / "memory",
        batch_size=batch_size,
    )


def robustbench_target(
    name: str,
    threat_model: str = "Linf",
    *,
    data: str = "cifar10",
    data_dir: str | Path | None = None,
    n: int | None = None,
    state_root: Path,
    model_dir: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> EvalTarget:
    """A CIFAR-10 zoo model, its checkpoint in `model_dir` (default: robench's cache folder
    robustbench/, in robustbench's layout), named robustbench/<threat model>/<name>."""
    from robench.data.cache import cache_root
    from robench.models.robustbench_published import published
    from robench.models.robustbench_zoo import load_zoo_model

    zoo = load_zoo_model(name, threat_model, model_dir or cache_root() / "robustbench")
    test, info = load_test(data, data_dir, n=n)
    weights_hash = tensors_sha256(zoo.model.state_dict())
    identity = ("robustbench", zoo.robustbench_version, threat_model, name, weights_hash)
    target = _own_model_target(
        zoo.model,
        check_row_name(f"robustbench/{threat_model}/{name}", "--robustbench"),
        test,
        info,
        architecture=f"robustbench:{threat_model}/{name}",
        checkpoint=zoo.checkpoint.name,
        source=str(zoo.checkpoint),
        model_hash=combined_sha256(identity),
        weights_hash=weights_hash,
        flag_root=state_root / "robustbench",
        batch_size=batch_size,
        kind="robustbench",
    )
    if zoo.kept_constants:
        target.notes.append(
            f"{zoo.checkpoint} lacks {', '.join(zoo.kept_constants)}: kept the constructor's"
        )
    entry = published(name, threat_model)
    if entry is not None:
        target.published = {
            "published_ta": entry["clean_acc"],
            "published_aa": entry["autoattack_acc"],
            "published_source": entry["source"],
        }
    return target


def _own_model_target(
    model: nn.Module,
    name: str,
    test: ArrayDataset,
    info: dict[str, Any],
    *,
    architecture: str,
    checkpoint: str,
    source: str,
    model_hash: str,
    weights_hash: str,
    flag_root: Path,
    batch_size: int,
    kind: str = "external",
) -> EvalTarget:
    """A model from elsewhere (files, memory, a zoo): its identity columns and flags."""
    return EvalTarget(
        name=name,
        model=model,
        test=test,
        data_info=info,
        identity={
            "run": name,
            "pretext": kind,
            "scenario": kind,
            "model": architecture,
            "checkpoint": checkpoint,
            "epochs_to_best": None,
            "train_suite": "",
            "train_suite_sha256": "",
            "run_dir": source,
            "model_id": short_id("weights", weights_hash),
        },
        model_hash=model_hash,
        flag_dir=flag_root / f"{slug(name)}-{model_hash[:12]}",
        batch_size=batch_size,
    )
