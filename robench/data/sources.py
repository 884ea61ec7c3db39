"""Where data comes from: torchvision's CIFAR files or an image folder.

Machines here cannot download CIFAR, so a `cifar10` source transparently accepts an image
folder (the JPEG copy) at the data root; the provenance label then says so, because a model
evaluated on JPEG pixels must never be reported as plain CIFAR-10.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from robench.data.dataset import ArrayDataset
from robench.data.imagefolder import class_names, load_image_folder, looks_like_image_folder
from robench.errors import ConfigError, DataError

DOWNLOAD_TIMEOUT_S = 20.0
SPLITS = ("train", "test")


@dataclass(frozen=True)
class SourceSpec:
    name: str
    title: str  # human name used in dataset labels
    num_classes: int | None  # None: whatever the folder holds
    torchvision_class: str | None
    image_size: int | None = None  # None: any (consistent) size


SOURCES: dict[str, SourceSpec] = {
    "cifar10": SourceSpec("cifar10", "CIFAR-10", 10, "CIFAR10", 32),
    "cifar100": SourceSpec("cifar100", "CIFAR-100", 100, "CIFAR100", 32),
    "imagefolder": SourceSpec("imagefolder", "image folder", None, None),
}


def resolve_data_root(data_dir: str | Path | None) -> Path:
    """--data-dir, else $ROBENCH_DATA, else the per-user cache (where downloads go)."""
    if data_dir is not None and str(data_dir) != "":
        root = Path(data_dir)
    elif os.environ.get("ROBENCH_DATA"):
        root = Path(os.environ["ROBENCH_DATA"])
    else:
        root = Path(platformdirs.user_cache_dir("robench")) / "data"
    return root.expanduser().resolve()


def get_source(source: str) -> SourceSpec:
    try:
        return SOURCES[source]
    except KeyError:
        valid = ", ".join(SOURCES)
        raise ConfigError(f"unknown data source {source!r}; valid sources: {valid}") from None


def load_source(
    source: str,
    root: Path,
    split: str,
    download: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[ArrayDataset, dict[str, Any]]:
    """One official split plus provenance: {dataset, is_jpeg_copy, content_hash, source, root}."""
    spec = get_source(source)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    if spec.torchvision_class is None or looks_like_image_folder(root):
        return _from_image_folder(spec, root, split, progress)
    data = _from_torchvision(spec, root, split, download)
    h = hashlib.blake2b(data.images, digest_size=16)  # buffer protocol: no 150 MB copy
    h.update(data.labels)
    info = _info(spec.title, False, h.hexdigest(), spec, root)
    return data, info


def _info(dataset: str, is_jpeg: bool, content_hash: str, spec: SourceSpec, root: Path) -> dict:
    return {
        "dataset": dataset,
        "is_jpeg_copy": is_jpeg,
        "content_hash": content_hash,
        "source": spec.name,
        "root": str(root),
    }


def _from_image_folder(
    spec: SourceSpec, root: Path, split: str, progress: Callable[[str], None] | None
) -> tuple[ArrayDataset, dict[str, Any]]:
    if spec.num_classes is not None:
        # check the class count before decoding anything: a wrong folder fails in milliseconds
        found = len(class_names(root / split))
        if found != spec.num_classes:
            raise DataError(
                f"{root / split} has {found} class folders but {spec.title} has "
                f"{spec.num_classes}; point --data-dir/ROBENCH_DATA at a {spec.title} image "
                "folder, or use the 'imagefolder' source for other data"
            )
    data, content_hash, is_jpeg = load_image_folder(root, split, progress)
    size = spec.image_size
    if size is not None and len(data) and data.images.shape[1:3] != (size, size):
        h, w = data.images.shape[1:3]
        raise DataError(
            f"{root / split} holds {h}x{w} images but {spec.title} images are {size}x{size}; "
            "point --data-dir/ROBENCH_DATA at the right folder, or use the 'imagefolder' source"
        )
    if spec.num_classes is None:
        label = f"image folder {root.name}" + (" (JPEG)" if is_jpeg else "")
    elif is_jpeg:
        label = f"{spec.title} (JPEG copy: {root.name})"
    else:
        label = f"{spec.title} (image folder: {root.name})"
    return data, _info(label, is_jpeg, content_hash, spec, root)


def _from_torchvision(spec: SourceSpec, root: Path, split: str, download: bool) -> ArrayDataset:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, str(spec.torchvision_class))
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a dead network must not hang for minutes
    try:
        # torchvision prints download chatter; the caller owns the console
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ds = cls(str(root), train=split == "train", download=download)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
        reason = "download disabled" if not download else _short(e)
        what = "found" if not download else "found or downloaded"
        raise DataError(
            f"{spec.title} not {what} under {root} ({reason}); pass --data-dir or set "
            f"ROBENCH_DATA to a torchvision {spec.title} root or an image folder with train/ "
            "and test/"
        ) from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    images = np.ascontiguousarray(ds.data, dtype=np.uint8)
    return ArrayDataset(images, np.asarray(ds.targets, dtype=np.int64), tuple(ds.classes))


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}"[:120].rstrip(": ")
