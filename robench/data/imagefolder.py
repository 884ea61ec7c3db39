"""Image-folder loading: `root/<split>/<class>/<file>` decoded into one uint8 array.

This is how CIFAR-10 reaches machines that cannot download it (the JPEG copy), so labels must
follow the official class order (folders sorted by name), the image order must keep first-n
subsets meaningful (see `_order_keys`), and failures must name the offending path instead of
showing a PIL traceback.
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from robench.data.cache import Progress, cached_decode, decoded_dir
from robench.data.dataset import ArrayDataset
from robench.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
JPEG_EXTENSIONS = (".jpg", ".jpeg")
LAYOUT_HINT = "an image folder needs <root>/train/<class>/<images> and <root>/test/<class>/<images>"
PARALLEL_MIN_IMAGES = 4096  # below this a process pool costs more than it saves


@dataclass(frozen=True)
class FolderScan:
    """What is on disk for one split, before decoding."""

    split_dir: Path
    classes: tuple[str, ...]
    names: tuple[str, ...]  # "<class>/<file>"; plain strings, as Path ops cost ~1 s per 60k files
    labels: np.ndarray

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(self.split_dir / name for name in self.names)

    @property
    def is_jpeg(self) -> bool:
        return any(name.lower().endswith(JPEG_EXTENSIONS) for name in self.names)


def looks_like_image_folder(root: Path) -> bool:
    """True when `root` is meant as an image folder (so errors name the folder layout)."""
    return (root / "train").is_dir() or (root / "test").is_dir()


def class_names(split_dir: Path) -> tuple[str, ...]:
    """Sorted class-folder names; hidden folders (.ipynb_checkpoints, ...) are not classes."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir} does not exist; {LAYOUT_HINT}")
    names = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and e.name[0] != ".")
    if not names:
        raise DataError(f"{split_dir} has no class folders; {LAYOUT_HINT}")
    return tuple(names)


def scan_split(root: Path, split: str) -> FolderScan:
    if not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist; pass --data-dir or set ROBENCH_DATA to an "
            "existing folder"
        )
    split_dir = root / split
    classes = class_names(split_dir)
    per_class: list[list[str]] = []
    for name in classes:
        files = sorted(
            e.name
            for e in os.scandir(split_dir / name)
            if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)
        )
        if not files:
            raise DataError(
                f"class folder {split_dir / name} has no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "add images or remove the folder"
            )
        per_class.append(files)
    entries = sorted(_order_keys(per_class))
    names = tuple(f"{classes[label]}/{file}" for _, label, file in entries)
    labels = np.fromiter((label for _, label, _ in entries), dtype=np.int64, count=len(entries))
    return FolderScan(split_dir, classes, names, labels)


def _order_keys(per_class: list[list[str]]) -> list[tuple[int, int, str]]:
    """(sort key, label, file name) for every image; sorting them gives the split's order.

    Class-after-class order would make every "first n" subset (quick evaluation on the first
    1,000 test images) a handful of classes. So when file stems are integers unique across the
    split, they are taken as official indices (cifar10-exact names files that way) and define
    the order; otherwise classes are interleaved by rank within the class (the JPEG copy
    numbers each class from 0), which keeps every prefix class-balanced. Within a class the
    order is always by file name.
    """
    stems = [os.path.splitext(f)[0] for files in per_class for f in files]
    global_index = all(s.isascii() and s.isdigit() for s in stems) and len(
        {int(s) for s in stems}
    ) == len(stems)
    return [
        (int(os.path.splitext(f)[0]) if global_index else rank, label, f)
        for label, files in enumerate(per_class)
        for rank, f in enumerate(files)
    ]


def read_and_hash(scan: FolderScan) -> tuple[list[bytes], str]:
    """All file bytes plus a blake2b over relative paths and bytes (the cache key)."""
    base = str(scan.split_dir)
    blobs: list[bytes] = []
    stream: list[bytes] = []  # hashed in one call: per-file updates cost more than the hashing
    for name in scan.names:
        try:
            with open(os.path.join(base, name), "rb") as f:
                data = f.read()
        except OSError as e:
            raise DataError(
                f"cannot read {scan.split_dir / name} ({e.strerror}); fix or delete the file"
            ) from None
        rel = name.encode()
        stream.append(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little"))
        stream.append(data)
        blobs.append(data)
    return blobs, hashlib.blake2b(b"".join(stream), digest_size=16).hexdigest()


Failure = tuple[int, str, str]  # (index in chunk, "size" | "decode", detail)


def _decode_chunk(blobs: list[bytes], size: tuple[int, int]) -> tuple[np.ndarray, Failure | None]:
    """Decode into (n, H, W, 3); a failure is returned, not raised, because worker processes
    do not know the file paths the user needs to see."""
    out = np.empty((len(blobs), size[1], size[0], 3), dtype=np.uint8)
    for i, blob in enumerate(blobs):
        try:
            with Image.open(io.BytesIO(blob)) as im:
                if im.size != size:
                    return out, (i, "size", f"{im.size[0]}x{im.size[1]}")
                out[i] = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            return out, (i, "decode", _reason(e))
    return out, None


def _reason(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:120]


def _first_size(path: Path, blob: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(blob)) as im:
            return im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot read image {path} ({_reason(e)}); replace or delete it") from None


def decode_images(paths: tuple[Path, ...], blobs: list[bytes]) -> np.ndarray:
    """Decode every image, in parallel processes when there are enough to pay for them.

    All images must share the first one's size: resizing would silently change the data.
    """
    size = _first_size(paths[0], blobs[0])
    workers = min(os.cpu_count() or 1, 8)
    chunk = max(1, -(-len(blobs) // (workers * 4)))
    starts = list(range(0, len(blobs), chunk))
    results = None
    if workers > 1 and len(blobs) >= PARALLEL_MIN_IMAGES:
        try:
            with ProcessPoolExecutor(workers) as pool:
                jobs = [pool.submit(_decode_chunk, blobs[s : s + chunk], size) for s in starts]
                results = [j.result() for j in jobs]
        except (OSError, BrokenProcessPool):
            results = None  # no processes here (sandbox, exhausted); serial is only slower
    if results is None:
        results = [_decode_chunk(blobs[s : s + chunk], size) for s in starts]
    for start, (_, failure) in zip(starts, results, strict=True):
        if failure is None:
            continue
        index, kind, detail = failure
        path = paths[start + index]
        if kind == "size":
            raise DataError(
                f"{path} is {detail} but {paths[0]} is {size[0]}x{size[1]}; all images in a "
                "split must have the same size: resize or remove the odd ones"
            )
        raise DataError(f"cannot read image {path} ({detail}); replace or delete it")
    return np.concatenate([arr for arr, _ in results])


def load_image_folder(
    root: Path, split: str, progress: Progress | None = None
) -> tuple[ArrayDataset, str, bool]:
    """The split as an ArrayDataset, its content hash, and whether its files are JPEG."""
    scan = scan_split(root, split)
    blobs, content_hash = read_and_hash(scan)

    def build() -> tuple[np.ndarray, np.ndarray]:
        if progress:
            n = len(scan.names)
            progress(f"decoding {n} images from {scan.split_dir} (once; cached in {decoded_dir()})")
        return decode_images(scan.paths, blobs), scan.labels

    key = f"{content_hash}-pil{PIL.__version__}"  # another PIL may decode JPEG differently
    images, _ = cached_decode(key, len(scan.names), build, progress)
    # labels come from the paths, which the key already covers
    return ArrayDataset(images, scan.labels, scan.classes), content_hash, scan.is_jpeg
