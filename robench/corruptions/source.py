"""Corrupted test sets: the official CIFAR-10-C files where present, else generated and cached.

Official layout: `<folder>/<corruption>.npy` holds 5 x 10,000 uint8 images [N, 32, 32, 3]
(severity 1 first, each block in the official test order) and `<folder>/labels.npy` their
labels (the 10,000 test labels, repeated per severity). Generated sets come from the test
images given, with per-chunk seeded generators; they are cached by the input pixels' content
hash, corruption, severity, seed and GENERATOR_VERSION, so a second request is a load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock, Timeout

from robench.atomic import atomic_write
from robench.corruptions.base import SEVERITIES, check_severity
from robench.corruptions.registry import CORRUPTIONS
from robench.data.cache import LOCK_TIMEOUT_S, cache_root
from robench.data.convert import to_chw, to_unit
from robench.errors import ConfigError, DataError

CORRUPTION_NAMES = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
# Bump whenever any corruption's output changes: it keys the cache and labels results.
GENERATOR_VERSION = "v1"
CHUNK = 1000  # images per seeded generator stream (and per device batch)
OFFICIAL_LABEL = "CIFAR-10-C (official)"
IMAGE_SHAPE = (32, 32, 3)
OFFICIAL_HINT = (
    "the official CIFAR-10-C folder has one <corruption>.npy per corruption (severities 1-5 "
    "stacked) plus labels.npy"
)

ImagesLike = np.ndarray | torch.Tensor
Progress = Callable[[str], None]


def generated_label(seed: int) -> str:
    return f"robench-generated CIFAR-10-C (seed {seed}, generator {GENERATOR_VERSION})"


def _check(name: str, severity: int) -> None:
    CORRUPTIONS.get(name)  # an unknown name fails with the list of valid ones
    check_severity(severity)


def corrupt(name: str, x: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Apply corruption `name` to float images [N, 3, 32, 32] in [0, 1]."""
    _check(name, severity)
    return CORRUPTIONS.get(name)(x, severity, generator)


# ---------------------------------------------------------------- official files


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} is missing; {OFFICIAL_HINT}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path} is not a readable .npy file ({e})") from None


def load_official(
    folder: str | Path, name: str, severity: int, n: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` (default all) images of one severity block: uint8 [n, 32, 32, 3], labels.

    Image i of a block is official test image i, so the labels equal the test labels.
    """
    _check(name, severity)
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"CIFAR-10-C folder {folder} does not exist; {OFFICIAL_HINT}")
    images = _load_npy(folder / f"{name}.npy")
    labels = _load_npy(folder / "labels.npy")
    total = images.shape[0] if images.ndim else 0
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE or total % len(SEVERITIES):
        raise DataError(
            f"{folder / f'{name}.npy'} holds {images.dtype} {images.shape}; expected uint8 "
            f"[5 * n, 32, 32, 3] (50,000 images for CIFAR-10-C)"
        )
    per = total // len(SEVERITIES)
    if labels.ndim != 1 or labels.shape[0] not in (total, per):
        raise DataError(
            f"{folder / 'labels.npy'} has shape {labels.shape}; expected ({total},) or ({per},) "
            f"to match {name}.npy"
        )
    if n is None:
        n = per
    if not 0 <= n <= per:
        raise DataError(f"asked for {n} images but {name}.npy has {per} per severity")
    start = (int(severity) - 1) * per
    label_start = start if labels.shape[0] == total else 0
    return (
        np.array(images[start : start + n]),
        np.array(labels[label_start : label_start + n], dtype=np.int64),
    )


# ---------------------------------------------------------------- generation


def _as_uint8_hwc(images: ImagesLike) -> np.ndarray:
    """uint8 [N, 32, 32, 3]; accepts that (numpy or torch) or float [N, 3, 32, 32] in [0, 1]."""
    if isinstance(images, torch.Tensor):
        t = images.detach().cpu()
        if t.is_floating_point() and t.ndim == 4 and t.shape[1] == 3:
            t = (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        images = t.numpy()
    arr = np.ascontiguousarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"test images must be uint8 [N, 32, 32, 3] or float [N, 3, 32, 32] in [0, 1], "
            f"got {arr.dtype} {arr.shape}"
        )
    return arr


def _stream_seed(seed: int, name: str, severity: int, chunk: int) -> int:
    digest = hashlib.sha256(f"{seed}/{name}/{severity}/{chunk}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    # truncation, as np.uint8(...) in the official script; +1e-3 keeps exact levels exact
    return (x * 255 + 1e-3).floor().clamp(0, 255).to(torch.uint8)


def generate(
    images: ImagesLike,
    labels: np.ndarray | torch.Tensor | None,
    name: str,
    severity: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Corrupt `images` with `name` at `severity`: uint8 [N, 32, 32, 3], like the official files.

    `labels` are only checked to match the images in number (they are unchanged by corruption).
    Images go through in chunks of CHUNK, each with its own CPU generator seeded from (seed,
    name, severity, chunk index): the result depends on the pixels, name, severity and seed,
    not on the device beyond float rounding, and the first k * CHUNK images of a generated set
    equal the set generated from those images alone (first-1,000 evaluations stay consistent).
    """
    _check(name, severity)
    arr = _as_uint8_hwc(images)
    if labels is not None and len(labels) != len(arr):
        raise DataError(f"{len(arr)} images but {len(labels)} labels")
    fn = CORRUPTIONS.get(name)
    out = np.empty_like(arr)
    for chunk, start in enumerate(range(0, len(arr), CHUNK)):
        g = torch.Generator().manual_seed(_stream_seed(seed, name, severity, chunk))
        x = to_chw(arr[start : start + CHUNK], device, contiguous=False)
        y = fn(to_unit(x, torch.preserve_format), severity, g)
        out[start : start + CHUNK] = _to_uint8(y).permute(0, 2, 3, 1).cpu().numpy()
    return out


def _content_hash(arr: np.ndarray) -> str:
    h = hashlib.sha256(f"{arr.dtype}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()[:24]


def cache_path(images: np.ndarray, name: str, severity: int, seed: int) -> Path:
    key = f"{name}-s{int(severity)}-seed{int(seed)}-{GENERATOR_VERSION}-{_content_hash(images)}"
    return cache_root() / "corruptions" / f"{key}.npy"


def _read(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
        if arr.dtype == np.uint8 and arr.shape == shape:
            return arr
    except (OSError, ValueError, EOFError):
        pass
    path.unlink(missing_ok=True)  # damaged: rebuild
    return None


def _write(path: Path, arr: np.ndarray) -> None:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save(path) would append ".npy"
            np.save(f, arr)

    atomic_write(path, save)


def generate_cached(
    images: ImagesLike,
    labels: np.ndarray | torch.Tensor | None,
    name: str,
    severity: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> np.ndarray:
    """`generate`, stored under <robench cache>/corruptions/ so a second call only loads."""
    _check(name, severity)
    arr = _as_uint8_hwc(images)
    path = cache_path(arr, name, severity, seed)
    hit = _read(path, arr.shape)
    if hit is not None:
        return hit
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
        lock.acquire()
    except Timeout:
        raise DataError(
            f"waited {LOCK_TIMEOUT_S:.0f} s for another process generating {path}; wait for it "
            "to finish, or set ROBENCH_CACHE to another directory"
        ) from None
    except OSError as e:
        if progress:
            progress(f"cache directory {path.parent} is not usable ({e.strerror}); not caching")
        return generate(arr, labels, name, severity, seed, device)
    try:
        hit = _read(path, arr.shape)  # another process may have made it while we waited
        if hit is not None:
            return hit
        if progress:
            progress(f"generating {name} severity {severity} for {len(arr)} images")
        out = generate(arr, labels, name, severity, seed, device)
        try:
            _write(path, out)
        except OSError as e:
            if progress:
                progress(f"could not write {path} ({e.strerror}); continuing uncached")
        return out
    finally:
        lock.release()


def corrupted_test_set(
    name: str,
    severity: int,
    *,
    test_images: ImagesLike | None,
    test_labels: np.ndarray | torch.Tensor | None,
    official_dir: str | Path | None = None,
    n: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """(uint8 images [n, 32, 32, 3], int64 labels, source label) for one corruption/severity.

    With `official_dir` the official files are read (the first n of the official test order)
    and the test arrays are not used; otherwise the first n test images are corrupted here.
    """
    _check(name, severity)
    if official_dir is not None:
        images, labels = load_official(official_dir, name, severity, n)
        return images, labels, OFFICIAL_LABEL
    if test_images is None or test_labels is None:
        raise ConfigError("give the test images and labels, or a folder of official CIFAR-10-C")
    arr = _as_uint8_hwc(test_images)
    labels = np.asarray(
        test_labels.cpu() if isinstance(test_labels, torch.Tensor) else test_labels
    ).astype(np.int64)
    if len(labels) != len(arr):
        raise DataError(f"{len(arr)} test images but {len(labels)} labels")
    if n is not None:
        if not 0 <= n <= len(arr):
            raise DataError(f"asked for {n} images but the test set has {len(arr)}")
        arr, labels = arr[:n], labels[:n]
    images = generate_cached(arr, labels, name, severity, seed, device, progress)
    return images, labels, generated_label(seed)
