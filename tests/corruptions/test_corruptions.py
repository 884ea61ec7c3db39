"""CIFAR-10-C: bad input, severity ordering, fidelity to the published operations, the official
file loader, the generation cache and the preview sheet (the contract every corruption keeps
is test_corruptions_contract.py)."""

from __future__ import annotations

import itertools

import matplotlib.colors
import numpy as np
import pytest
import torch
from helpers import smooth_images
from PIL import Image

import robench.corruptions as C
from robench.corruptions import _ops, source
from robench.corruptions.frost import frost_textures
from robench.corruptions.glass_blur import scramble
from robench.corruptions.preview import contact_sheet, sheet_size
from robench.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return smooth_images()


def run(name: str, x: torch.Tensor, severity: int, seed: int = 0) -> torch.Tensor:
    return C.corrupt(name, x, severity, torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- bad input


def test_bad_inputs_are_clear_errors(images):
    with pytest.raises(ConfigError, match="severity"):
        run("fog", images, 6)
    with pytest.raises(DataError, match="32x32"):
        run("fog", torch.rand(1, 3, 64, 64), 1)
    with pytest.raises(DataError, match="float"):
        run("fog", (images * 255).to(torch.uint8), 1)


# ---------------------------------------------------------------- severity ordering


def _mean_abs(clean: torch.Tensor, out: torch.Tensor) -> float:
    return float((out - clean).abs().mean())


def _decorrelation(clean: torch.Tensor, out: torch.Tensor) -> float:
    a = clean.flatten(1) - clean.flatten(1).mean(1, keepdim=True)
    b = out.flatten(1) - out.flatten(1).mean(1, keepdim=True)
    return float(1 - ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean())


# frost: the image weight falls while the texture's rises, so pixel distance can shrink while
# the image fades; how much of the image survives (correlation) is the right measure
MEASURES = {"frost": _decorrelation}


@pytest.mark.parametrize(
    "name", [n for n in C.CORRUPTION_NAMES if n not in ("glass_blur", "elastic_transform")]
)
@pytest.mark.external
def test_severity_is_monotone(exact_test_batch, name):
    clean = exact_test_batch[0][:24]
    measure = MEASURES.get(name, _mean_abs)
    d = [measure(clean, run(name, clean, s)) for s in C.SEVERITIES]
    assert all(b >= a - 1e-4 for a, b in itertools.pairwise(d)), d  # motion blur 3 and 4 tie
    assert d[-1] > d[0]


@pytest.mark.external
def test_glass_blur_two_passes_beat_one(exact_test_batch):
    # the official severities trade blur against scrambling, so 1-3 are not ordered (CIFAR-10-C
    # accuracies are not either); the two-pass severities 4-5 are the strongest
    clean = exact_test_batch[0][:24]
    d = [_mean_abs(clean, run("glass_blur", clean, s)) for s in C.SEVERITIES]
    assert min(d[3:]) > max(d[:3]), d


def test_elastic_distortion_grows_and_severity_1_is_affine():
    # warp an image of its own coordinates to read off where each pixel came from; the
    # affine jitter shrinks with severity while the elastic part grows, so measure the latter:
    # the distance of the source coordinates from their best affine fit (median over images,
    # as a strong affine jitter can fold a few images' centres at the border)
    n = 16
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    coords = torch.stack([yy / 31, xx / 31, torch.zeros(32, 32)]).expand(n, 3, 32, 32)
    centre = (slice(None), slice(None, 2), slice(8, 24), slice(8, 24))
    a = torch.stack([yy[centre[2:]].flatten(), xx[centre[2:]].flatten(), torch.ones(256)], 1)
    a = a.double().expand(n, -1, -1)
    residual = []
    for s in C.SEVERITIES:
        src = run("elastic_transform", coords.contiguous(), s)[centre] * 31
        b = src.reshape(n, 2, -1).transpose(1, 2).double()
        fit = a @ torch.linalg.lstsq(a, b).solution
        residual.append(float((fit - b).pow(2).mean((1, 2)).sqrt().median()))
    assert residual[0] < 1e-3, residual  # affine up to float32 rounding
    assert all(b > a for a, b in itertools.pairwise(residual)), residual


# ---------------------------------------------------------------- fidelity of the operations


def test_helpers_match_scipy():
    ndi = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    img = rng.random((32, 32))
    x = torch.from_numpy(img)[None, None]
    for sigma in (0.25, 0.4, 1.92, 6.4):
        ref = ndi.gaussian_filter(img, sigma, mode="nearest", truncate=4.0)
        np.testing.assert_allclose(_ops.gaussian_blur(x, sigma)[0, 0], ref, atol=1e-12)
        ref = ndi.gaussian_filter(img, sigma, mode="reflect", truncate=3.0)
        out = _ops.gaussian_blur(x, sigma, 3.0, "reflect")[0, 0]
        np.testing.assert_allclose(out, ref, atol=1e-12)
    for factor in (1.0, 1.06, 1.13, 1.25, 1.75, 2.25):  # the official clipped_zoom
        ch = int(np.ceil(32 / factor))
        top = (32 - ch) // 2
        zoomed = ndi.zoom(img[top : top + ch, top : top + ch], factor, order=1)
        trim = (zoomed.shape[0] - 32) // 2
        ref = zoomed[trim : trim + 32, trim : trim + 32]
        np.testing.assert_allclose(_ops.clipped_zoom(x, factor)[0, 0], ref, atol=1e-12)
    kernel = _ops.disk_kernel(1.5, 0.1)
    ref = ndi.correlate(img, kernel.numpy(), mode="mirror")  # = OpenCV's reflect-101
    out = _ops.apply_operator(x, _ops.filter2d_operator(kernel, 32, 32))[0, 0]
    np.testing.assert_allclose(out, ref, atol=1e-12)
    yy, xx = np.meshgrid(np.arange(32.0), np.arange(32.0), indexing="ij")
    ys, xs = yy + rng.uniform(-3, 3, yy.shape), xx + rng.uniform(-3, 3, xx.shape)
    for mode, scipy_mode in (("reflect", "reflect"), ("reflect101", "mirror")):
        ref = ndi.map_coordinates(img, (ys, xs), order=1, mode=scipy_mode)
        grid = (torch.from_numpy(ys)[None], torch.from_numpy(xs)[None])
        out = _ops.sample_bilinear(x, *grid, mode)[0, 0]
        np.testing.assert_allclose(out, ref, atol=1e-12)


def test_disk_kernel_is_normalised_and_small():
    for radius, blur in ((0.3, 0.4), (1, 0.2), (1.5, 0.1)):
        k = _ops.disk_kernel(radius, blur)
        assert k.shape[0] in (3, 5) and abs(float(k.sum()) - 1) < 1e-12


def test_glass_scramble_matches_the_official_loop():
    # the official loop, including its numpy "swap" of views that copies instead
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    dy = rng.integers(-1, 1, (30, 30))
    dx = rng.integers(-1, 1, (30, 30))
    ref = img.copy()
    for h in range(31, 1, -1):
        for w in range(31, 1, -1):
            h2, w2 = h + dy[h - 2, w - 2], w + dx[h - 2, w - 2]
            ref[h, w], ref[h2, w2] = ref[h2, w2], ref[h, w]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    out = scramble(x, torch.from_numpy(dy)[None], torch.from_numpy(dx)[None])
    np.testing.assert_array_equal(out[0].permute(1, 2, 0).numpy(), ref)


def test_motion_blur_is_a_one_sided_gaussian_line():
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 16, 16] = 1
    out = _ops.motion_blur(x, radius=6, sigma=2, angles_deg=torch.tensor([0.0]))
    w = torch.exp(-(torch.arange(13.0) ** 2) / 8)
    w = w / w.sum()
    # output(p) gathers input(p + i * direction): an impulse trails against the direction
    np.testing.assert_allclose(out[0, 0, 16, 4:17].flip(0), w, atol=1e-6)
    assert float(out[0, 0].sum()) == pytest.approx(1, abs=1e-5)
    down = _ops.motion_blur(x, 6, 2, torch.tensor([90.0]))
    np.testing.assert_allclose(down[0, 0, 4:17, 16].flip(0), w, atol=1e-6)


def test_brightness_matches_the_hsv_round_trip(images):
    hsv = matplotlib.colors.rgb_to_hsv(images.permute(0, 2, 3, 1).double().numpy())
    hsv[..., 2] = np.clip(hsv[..., 2] + 0.3, 0, 1)
    ref = matplotlib.colors.hsv_to_rgb(hsv)
    out = run("brightness", images, 5).permute(0, 2, 3, 1).double().numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_frost_textures_are_fixed_and_visible():
    # synthesised (the official frost photos are not available): same on every call and run
    textures = frost_textures()
    assert textures.shape == (5, 3, 128, 128)
    frost_textures.cache_clear()
    assert torch.equal(frost_textures(), textures)
    assert 0.35 < float(textures.mean()) < 0.6 and float(textures.std()) > 0.15


def test_plasma_fractal_spans_zero_to_one():
    m = _ops.plasma_fractal(torch.Generator().manual_seed(0), 3, torch.zeros(()), 32, 2)
    assert m.shape == (3, 32, 32)
    np.testing.assert_allclose(m.amin(dim=(1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(m.amax(dim=(1, 2)), 1, atol=1e-12)


# ---------------------------------------------------------------- official files


def _official_folder(root, per=20, labels_per_severity=False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5 * per, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, per).astype(np.uint8)
    np.save(root / "fog.npy", images)
    np.save(root / "labels.npy", labels if labels_per_severity else np.tile(labels, 5))
    return images, labels


@pytest.mark.parametrize("labels_per_severity", [False, True])
def test_load_official_returns_the_severity_block(tmp_path, labels_per_severity):
    images, labels = _official_folder(tmp_path, labels_per_severity=labels_per_severity)
    got, got_labels = C.load_official(tmp_path, "fog", 3)
    np.testing.assert_array_equal(got, images[40:60])
    np.testing.assert_array_equal(got_labels, labels)
    assert got_labels.dtype == np.int64 and not isinstance(got, np.memmap)
    got, got_labels = C.load_official(tmp_path, "fog", 5, n=7)
    np.testing.assert_array_equal(got, images[80:87])
    np.testing.assert_array_equal(got_labels, labels[:7])


def test_load_official_bad_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        C.load_official(tmp_path / "nope", "fog", 1)
    with pytest.raises(DataError, match=r"fog\.npy is missing"):
        C.load_official(tmp_path, "fog", 1)
    _official_folder(tmp_path)
    with pytest.raises(DataError, match=r"snow\.npy is missing"):
        C.load_official(tmp_path, "snow", 1)
    with pytest.raises(DataError, match="per severity"):
        C.load_official(tmp_path, "fog", 1, n=21)
    np.save(tmp_path / "labels.npy", np.zeros(33, np.uint8))
    with pytest.raises(DataError, match="labels"):
        C.load_official(tmp_path, "fog", 1)
    np.save(tmp_path / "fog.npy", np.zeros((99, 32, 32, 3), np.uint8))  # not 5 blocks
    with pytest.raises(DataError, match="expected uint8"):
        C.load_official(tmp_path, "fog", 1)
    np.save(tmp_path / "fog.npy", np.zeros((100, 32, 32), np.uint8))  # greyscale
    with pytest.raises(DataError, match="expected uint8"):
        C.load_official(tmp_path, "fog", 1)
    (tmp_path / "fog.npy").write_bytes(b"not a numpy file")
    with pytest.raises(DataError, match="not a readable"):
        C.load_official(tmp_path, "fog", 1)
    with pytest.raises(ConfigError, match="valid names"):
        C.load_official(tmp_path, "fogg", 1)


def test_corrupted_test_set_prefers_official_files(tmp_path):
    images, labels = _official_folder(tmp_path)
    got, got_labels, label = C.corrupted_test_set(
        "fog", 2, test_images=None, test_labels=None, official_dir=tmp_path, n=5
    )
    np.testing.assert_array_equal(got, images[20:25])
    np.testing.assert_array_equal(got_labels, labels[:5])
    assert label == "CIFAR-10-C (official)"


# ---------------------------------------------------------------- generation and cache


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_generate_is_uint8_and_accepts_float_tensors(images):
    clean = _uint8(images)
    out = C.generate(clean, np.zeros(4), "zoom_blur", 2, seed=0)
    assert out.dtype == np.uint8 and out.shape == clean.shape
    np.testing.assert_array_equal(out, C.generate(images, None, "zoom_blur", 2, seed=0))
    with pytest.raises(DataError, match="labels"):
        C.generate(clean, np.zeros(3), "zoom_blur", 2)
    with pytest.raises(DataError, match="uint8"):
        C.generate(clean[..., 0], None, "zoom_blur", 2)


def test_generated_prefixes_agree_at_chunk_boundaries(images, monkeypatch):
    monkeypatch.setattr(source, "CHUNK", 2)
    clean = _uint8(images)
    full = C.generate(clean, None, "glass_blur", 4, seed=0)
    np.testing.assert_array_equal(full[:2], C.generate(clean[:2], None, "glass_blur", 4, seed=0))


def test_generate_cached_loads_on_the_second_call(images, monkeypatch, tmp_path):
    monkeypatch.setenv("ROBENCH_CACHE", str(tmp_path))
    clean = _uint8(images)
    first = C.generate_cached(clean, None, "snow", 4, seed=3)
    files = list((tmp_path / "corruptions").glob("snow-s4-seed3-*.npy"))
    assert len(files) == 1

    def no_generation(*args, **kwargs):
        raise AssertionError("regenerated instead of loading the cache")

    monkeypatch.setattr(source, "generate", no_generation)
    second = C.generate_cached(clean, None, "snow", 4, seed=3)
    np.testing.assert_array_equal(first, second)
    with pytest.raises(AssertionError, match="regenerated"):  # another seed is another entry
        C.generate_cached(clean, None, "snow", 4, seed=4)


def test_corrupted_test_set_generates_with_a_provenance_label(images, monkeypatch, tmp_path):
    monkeypatch.setenv("ROBENCH_CACHE", str(tmp_path))
    clean, labels = _uint8(images), np.arange(4)
    out, out_labels, label = C.corrupted_test_set(
        "contrast", 5, test_images=clean, test_labels=labels, n=3, seed=7
    )
    assert out.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(out_labels, labels[:3])
    assert label == f"robench-generated CIFAR-10-C (seed 7, generator {C.GENERATOR_VERSION})"
    with pytest.raises(DataError, match="asked for 5"):
        C.corrupted_test_set("contrast", 5, test_images=clean, test_labels=labels, n=5)


@pytest.mark.gpu
def test_generation_on_gpu_matches_cpu(images):
    clean = _uint8(images)
    for name in C.CORRUPTION_NAMES:
        cpu = C.generate(clean, None, name, 5, seed=0).astype(int)
        gpu = C.generate(clean, None, name, 5, seed=0, device="cuda").astype(int)
        # the same random draws (made on the CPU); float rounding may move a level
        assert np.abs(cpu - gpu).max() <= 1, name


# ---------------------------------------------------------------- preview


def test_contact_sheet_has_the_expected_size(images, tmp_path):
    out = contact_sheet(images[0], tmp_path / "sheet.png", seed=0, scale=2)
    with Image.open(out) as png:
        assert png.size == sheet_size(2)
        assert png.mode == "RGB"
