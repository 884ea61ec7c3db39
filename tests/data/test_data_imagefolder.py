"""Image-folder source: order, decode cache, JPEG provenance and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from robench.data import imagefolder, load_source
from robench.data.cache import decoded_dir
from robench.errors import DataError


def test_loads_pixels_labels_and_order(tmp_path, make_folder):
    expected = make_folder(tmp_path / "folder")
    for split in ("train", "test"):
        data, info = load_source("imagefolder", tmp_path / "folder", split)
        images, labels = expected[split]
        assert data.images.dtype == np.uint8 and data.images.flags.c_contiguous
        assert data.labels.dtype == np.int64
        assert data.images.shape == images.shape
        np.testing.assert_array_equal(data.images, images)
        np.testing.assert_array_equal(data.labels, labels)
        assert data.classes == ("ant", "bee", "cat")
        assert info["is_jpeg_copy"] is False
        assert info["dataset"] == "image folder folder"
        assert info["source"] == "imagefolder"
        assert info["root"] == str(tmp_path / "folder")
        assert len(info["content_hash"]) == 32


def test_files_sort_by_name_not_creation_order(tmp_path):
    cls = tmp_path / "f" / "train" / "a"
    cls.mkdir(parents=True)
    (tmp_path / "f" / "test" / "a").mkdir(parents=True)
    for name, value in [("0002.png", 2), ("0000.png", 0), ("0010.png", 10), ("0001.png", 1)]:
        Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(cls / name)
    data, _ = load_source("imagefolder", tmp_path / "f", "train")
    assert data.images[:, 0, 0, 0].tolist() == [0, 1, 2, 10]


def test_per_class_numbering_interleaves_classes(tmp_path, make_folder):
    """Like the JPEG copy: every prefix stays class-balanced, each class keeps its order."""
    make_folder(tmp_path / "f", per_class={"train": 3})
    scan = imagefolder.scan_split(tmp_path / "f", "train")
    assert scan.names[:4] == ("ant/0000.png", "bee/0000.png", "cat/0000.png", "ant/0001.png")
    assert scan.labels.tolist() == [0, 1, 2] * 3


def test_global_index_names_give_official_order(tmp_path):
    """Like cifar10-exact: file stems are official indices, so they define the order."""
    official = {"dog": [1, 2, 7], "cat": [0, 4], "ant": [3, 5, 6]}
    for split in ("train", "test"):
        for cls, indices in official.items():
            (tmp_path / "f" / split / cls).mkdir(parents=True)
            for i in indices:
                pixel = np.full((4, 4, 3), i, np.uint8)
                Image.fromarray(pixel).save(tmp_path / "f" / split / cls / f"{i:05d}.png")
    data, _ = load_source("imagefolder", tmp_path / "f", "test")
    assert data.images[:, 0, 0, 0].tolist() == list(range(8))
    assert data.labels.tolist() == [1, 2, 2, 0, 1, 0, 0, 2]


def test_cache_is_hit_the_second_time(tmp_path, make_folder, monkeypatch):
    make_folder(tmp_path / "f")
    first, info1 = load_source("imagefolder", tmp_path / "f", "train")
    assert list(decoded_dir().glob("*.npz"))

    def fail(*args, **kwargs):
        raise AssertionError("decoded again despite a warm cache")

    monkeypatch.setattr(imagefolder, "decode_images", fail)
    second, info2 = load_source("imagefolder", tmp_path / "f", "train")
    np.testing.assert_array_equal(first.images, second.images)
    assert info1 == info2


def test_corrupt_cache_is_rebuilt(tmp_path, make_folder):
    expected = make_folder(tmp_path / "f")
    load_source("imagefolder", tmp_path / "f", "train")
    (cache_file,) = decoded_dir().glob("*.npz")
    cache_file.write_bytes(b"not a zip file at all")
    data, _ = load_source("imagefolder", tmp_path / "f", "train")
    np.testing.assert_array_equal(data.images, expected["train"][0])
    with np.load(cache_file) as f:  # rewritten whole
        np.testing.assert_array_equal(f["images"], expected["train"][0])
    assert not list(decoded_dir().glob("*.tmp"))


def test_changed_file_changes_hash_and_pixels(tmp_path, make_folder):
    make_folder(tmp_path / "f")
    _, before = load_source("imagefolder", tmp_path / "f", "train")
    target = tmp_path / "f" / "train" / "ant" / "0000.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(target)
    data, after = load_source("imagefolder", tmp_path / "f", "train")
    assert before["content_hash"] != after["content_hash"]
    assert data.images[0].max() == 0


def test_parallel_decode_matches_serial(tmp_path, make_folder, monkeypatch):
    expected = make_folder(tmp_path / "f", per_class={"train": 6})
    monkeypatch.setattr(imagefolder, "PARALLEL_MIN_IMAGES", 1)
    scan = imagefolder.scan_split(tmp_path / "f", "train")
    blobs, _ = imagefolder.read_and_hash(scan)
    np.testing.assert_array_equal(
        imagefolder.decode_images(scan.paths, blobs), expected["train"][0]
    )
    (scan.split_dir / "bee" / "0001.png").write_bytes(b"garbage")
    blobs, _ = imagefolder.read_and_hash(scan)
    with pytest.raises(DataError, match=r"bee/0001\.png"):
        imagefolder.decode_images(scan.paths, blobs)


def test_jpeg_folder_is_labelled_as_a_copy(tmp_path, make_folder):
    classes = tuple(f"c{i}" for i in range(10))
    make_folder(
        tmp_path / "cifar-jpg", classes=classes, per_class={"train": 1, "test": 1}, ext=".jpg"
    )
    data, info = load_source("cifar10", tmp_path / "cifar-jpg", "test")
    assert info["is_jpeg_copy"] is True
    assert info["dataset"] == "CIFAR-10 (JPEG copy: cifar-jpg)"
    assert info["source"] == "cifar10"
    assert data.images.shape == (10, 32, 32, 3)
    _, plain = load_source("imagefolder", tmp_path / "cifar-jpg", "test")
    assert plain["dataset"] == "image folder cifar-jpg (JPEG)"


def test_png_folder_for_cifar10_is_not_a_jpeg_copy(tmp_path, make_folder):
    make_folder(
        tmp_path / "exact", classes=tuple(f"c{i}" for i in range(10)), per_class={"test": 1}
    )
    _, info = load_source("cifar10", tmp_path / "exact", "test")
    assert info["is_jpeg_copy"] is False
    assert info["dataset"] == "CIFAR-10 (image folder: exact)"


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_root(tmp_path):
    with pytest.raises(DataError) as err:
        load_source("imagefolder", tmp_path / "nowhere", "train")
    assert "nowhere" in _one_line(err) and "ROBENCH_DATA" in str(err.value)


def test_missing_split_folder(tmp_path, make_folder):
    make_folder(tmp_path / "f", per_class={"train": 1})
    with pytest.raises(DataError) as err:
        load_source("imagefolder", tmp_path / "f", "test")
    assert "test" in _one_line(err) and "train/<class>" in str(err.value)


def test_no_class_folders(tmp_path):
    (tmp_path / "f" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no class folders"):
        load_source("imagefolder", tmp_path / "f", "train")


def test_empty_class_folder(tmp_path, make_folder):
    make_folder(tmp_path / "f")
    (tmp_path / "f" / "train" / "zebra").mkdir()
    (tmp_path / "f" / "train" / "zebra" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"zebra has no images"):
        load_source("imagefolder", tmp_path / "f", "train")


def test_wrong_class_count_for_cifar10(tmp_path, make_folder):
    make_folder(tmp_path / "f")
    with pytest.raises(DataError) as err:
        load_source("cifar10", tmp_path / "f", "train")
    assert "3 class folders" in _one_line(err) and "CIFAR-10 has 10" in str(err.value)


def test_mixed_sizes_name_the_file(tmp_path, make_folder):
    make_folder(tmp_path / "f")
    Image.fromarray(np.zeros((28, 30, 3), np.uint8)).save(tmp_path / "f/train/bee/0002.png")
    with pytest.raises(DataError) as err:
        load_source("imagefolder", tmp_path / "f", "train")
    assert "bee/0002.png is 30x28" in _one_line(err) and "32x32" in str(err.value)


@pytest.mark.parametrize("broken", ["ant/0000.png", "cat/0003.png"])
def test_corrupt_image_names_the_file(tmp_path, make_folder, broken):
    make_folder(tmp_path / "f")
    (tmp_path / "f" / "train" / broken).write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(DataError) as err:
        load_source("imagefolder", tmp_path / "f", "train")
    assert broken in _one_line(err) and "replace or delete" in str(err.value)


def test_grayscale_and_rgba_become_rgb(tmp_path):
    for split in ("train", "test"):
        (tmp_path / "f" / split / "a").mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 7, np.uint8), "L").save(tmp_path / "f/train/a/0.png")
    Image.fromarray(np.full((8, 8, 4), 9, np.uint8), "RGBA").save(tmp_path / "f/train/a/1.png")
    data, _ = load_source("imagefolder", tmp_path / "f", "train")
    assert data.images.shape == (2, 8, 8, 3)
    assert data.images[0].tolist() == np.full((8, 8, 3), 7).tolist()
    assert data.images[1].tolist() == np.full((8, 8, 3), 9).tolist()
