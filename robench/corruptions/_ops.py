"""Image operations shared by the corruptions, in batched torch, for [N, C, H, W] float images.

The published CIFAR-10-C code used scipy, skimage, OpenCV and ImageMagick; each helper here
reproduces the one behaviour it needs from them, named in its docstring. Linear separable
operations (Gaussian blur with a border rule, the zoom of `clipped_zoom`) are built once as
small H x H matrices, so applying them is two batched matmuls on any device.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from robench.corruptions.base import uniform
from robench.data.convert import to_chw, to_unit

# Border rules, by the name of the library behaviour they copy:
#   "nearest"    aaa|abcd|ddd  (scipy/skimage "nearest", ImageMagick's "edge" virtual pixels)
#   "reflect"    cba|abcd|dcb  (scipy "reflect": half-sample symmetric)
#   "reflect101" dcb|abcd|cba  (OpenCV BORDER_DEFAULT = BORDER_REFLECT_101)
BORDER_MODES = ("nearest", "reflect", "reflect101")


def border_index(i: Tensor, n: int, mode: str) -> Tensor:
    """Map integer indices into [0, n) by the border rule `mode`.

    Exact for indices less than n beyond either border (one reflection, which is all the
    corruptions need: the widest filter radius is 19 on 32 pixels); further ones are clamped.
    """
    if mode == "nearest":
        return i.clamp(0, n - 1)
    if mode == "reflect":
        i = torch.where(i < 0, -1 - i, i)
        i = torch.where(i >= n, 2 * n - 1 - i, i)
    elif mode == "reflect101":
        i = torch.where(i < 0, -i, i)
        i = torch.where(i >= n, 2 * (n - 1) - i, i)
    else:
        raise ValueError(f"unknown border mode {mode!r}; valid: {', '.join(BORDER_MODES)}")
    return i.clamp(0, n - 1)


def filter_matrix(kernel: Tensor, n: int, mode: str) -> Tensor:
    """The n x n matrix of 1-D correlation with the odd-length `kernel` under border `mode`."""
    radius = (kernel.numel() - 1) // 2
    out = torch.arange(n).unsqueeze(1)  # [n, 1]
    taps = torch.arange(-radius, radius + 1).unsqueeze(0)  # [1, K]
    src = border_index(out + taps, n, mode)
    mat = torch.zeros(n, n, dtype=kernel.dtype)
    mat.scatter_add_(1, src, kernel.expand(n, -1).clone())
    return mat


def separable(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Apply `rows` (H' x H) along the height and `cols` (W' x W) along the width.

    Written as two large matrix products over all N * C * H rows (not N * C small ones).
    """
    n, c, h, w = x.shape
    rows = rows.to(device=x.device, dtype=x.dtype)
    cols = cols.to(device=x.device, dtype=x.dtype)
    y = (x.reshape(-1, w) @ cols.T).view(n, c, h, -1)  # [N, C, H, W']
    y = y.transpose(2, 3).reshape(-1, h) @ rows.T  # [N * C * W', H']
    return y.view(n, c, -1, rows.shape[0]).transpose(2, 3).contiguous()


def gaussian_kernel1d(sigma: float, truncate: float) -> Tensor:
    """scipy.ndimage's Gaussian taps: radius int(truncate * sigma + 0.5), normalised."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


@lru_cache(maxsize=64)
def _gaussian_matrix(sigma: float, truncate: float, n: int, mode: str) -> Tensor:
    return filter_matrix(gaussian_kernel1d(sigma, truncate), n, mode)


def gaussian_blur(x: Tensor, sigma: float, truncate: float = 4.0, mode: str = "nearest") -> Tensor:
    """skimage.filters.gaussian over the two spatial axes (defaults: mode nearest, truncate 4).

    Like scipy, a sigma of (almost) zero leaves the image unchanged.
    """
    if sigma <= 1e-15:
        return x.clone()
    h, w = x.shape[-2:]
    return separable(
        x, _gaussian_matrix(sigma, truncate, h, mode), _gaussian_matrix(sigma, truncate, w, mode)
    )


def cv2_gaussian_kernel(ksize: int, sigma: float) -> Tensor:
    """cv2.getGaussianKernel(ksize, sigma) for sigma > 0."""
    t = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


@lru_cache(maxsize=16)
def disk_kernel(radius: float, alias_blur: float) -> Tensor:
    """The anti-aliased disk of the official defocus blur, cropped to its non-zero support.

    A 17x17 (or larger) grid, 1 inside x^2 + y^2 <= r^2, normalised, then smoothed with
    OpenCV's GaussianBlur (3x3, or 5x5 beyond radius 8) at sigma `alias_blur`.
    """
    half = 8 if radius <= 8 else math.ceil(radius)
    ksize = 3 if radius <= 8 else 5
    t = torch.arange(-half, half + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    disk = (xx**2 + yy**2 <= radius**2).double()
    disk /= disk.sum()
    m = filter_matrix(cv2_gaussian_kernel(ksize, alias_blur), disk.shape[0], "reflect101")
    kernel = m @ disk @ m.T
    support = kernel.abs().sum(0) > 0  # symmetric: the same rows and columns are non-zero
    lo = int(support.nonzero().min())
    return kernel[lo : kernel.shape[0] - lo, lo : kernel.shape[1] - lo].contiguous()


def filter2d_operator(kernel: Tensor, h: int, w: int, mode: str = "reflect101") -> Tensor:
    """cv2.filter2D (centre anchor) as one [h*w, h*w] map of row-major pixels, float64."""
    r = (kernel.shape[0] - 1) // 2
    ys = torch.arange(h).view(h, 1).expand(h, w).reshape(-1)
    xs = torch.arange(w).view(1, w).expand(h, w).reshape(-1)
    out = torch.arange(h * w)
    op = torch.zeros(h * w, h * w, dtype=torch.float64)
    for a, b in kernel.nonzero().tolist():
        src = border_index(ys + a - r, h, mode) * w + border_index(xs + b - r, w, mode)
        op.index_put_((out, src), kernel[a, b].expand(h * w).double(), accumulate=True)
    return op


def apply_operator(x: Tensor, op: Tensor) -> Tensor:
    """Apply a [H*W, H*W] linear map to every channel of x [N, C, H, W]: one matrix product."""
    n, c, h, w = x.shape
    op = op.to(device=x.device, dtype=x.dtype)
    return (x.reshape(n * c, h * w) @ op.T).view(n, c, h, w)


@lru_cache(maxsize=64)
def zoom_matrix(factor: float, n: int) -> Tensor:
    """The 1-D linear map of the official `clipped_zoom` (centre crop, scipy zoom, trim).

    Crop ceil(n / factor) central pixels, resize them with scipy.ndimage.zoom (order 1, corner-
    aligned: output o samples input o * (in - 1) / (out - 1), out = round(in * factor)), then
    keep the central n outputs.
    """
    ch = math.ceil(n / factor)
    top = (n - ch) // 2
    out_len = round(ch * factor)
    trim = (out_len - n) // 2
    o = torch.arange(trim, trim + n, dtype=torch.float64)
    pos = o * (ch - 1) / (out_len - 1) if out_len > 1 else torch.zeros(n, dtype=torch.float64)
    lo = pos.floor()
    frac = pos - lo
    lo_i = lo.long().clamp(0, ch - 1)
    hi_i = (lo_i + 1).clamp(max=ch - 1)
    mat = torch.zeros(n, n, dtype=torch.float64)
    rows = torch.arange(n)
    mat.index_put_((rows, top + lo_i), 1 - frac, accumulate=True)
    mat.index_put_((rows, top + hi_i), frac, accumulate=True)
    return mat


def clipped_zoom(x: Tensor, factor: float) -> Tensor:
    """Zoom into the centre of every image by `factor` (>= 1), keeping the size."""
    h, w = x.shape[-2:]
    return separable(x, zoom_matrix(factor, h), zoom_matrix(factor, w))


def motion_blur(x: Tensor, radius: float, sigma: float, angles_deg: Tensor) -> Tensor:
    """ImageMagick's MotionBlurImage, one angle per image (`angles_deg`: [N]).

    A one-sided line kernel: output(p) = sum_i w_i * input(p + round(i * (cos a, sin a))) for
    i = 0 .. 2 * ceil(radius), w_i proportional to exp(-i^2 / (2 sigma^2)); pixels beyond the
    border repeat the edge (ImageMagick's default virtual-pixel method).
    """
    n, c, h, w = x.shape
    width = 2 * math.ceil(radius) + 1
    i = torch.arange(width, dtype=torch.float64)
    weights = torch.exp(-(i**2) / (2 * sigma**2))
    weights = weights / weights.sum()
    # taps below 1e-7 of the total cannot move an 8-bit output; skipping them halves the work
    keep = int((weights >= 1e-7).sum())
    i, weights = i[:keep], weights[:keep].tolist()
    a = torch.deg2rad(angles_deg.double().cpu()).unsqueeze(1)  # [N, 1]
    off_x = torch.ceil(i * torch.cos(a) - 0.5).long().to(x.device)  # [N, width]
    off_y = torch.ceil(i * torch.sin(a) - 0.5).long().to(x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    flat = x.reshape(n, c, h * w)
    out = torch.zeros_like(flat)
    for k, weight in enumerate(weights):
        yy = (ys + off_y[:, k].view(n, 1, 1)).clamp(0, h - 1)
        xx = (xs + off_x[:, k].view(n, 1, 1)).clamp(0, w - 1)
        idx = (yy * w + xx).view(n, 1, h * w).expand(n, c, h * w)
        out += weight * flat.gather(2, idx)
    return out.view(n, c, h, w)


def plasma_fractal(
    generator: torch.Generator, n: int, like: Tensor, mapsize: int = 32, wibbledecay: float = 3
) -> Tensor:
    """[n, mapsize, mapsize] diamond-square height maps in [0, 1], as the official `plasma_fractal`.

    Same recursion and random amplitudes (start 100, divided by `wibbledecay` per level), one
    independent map per image.
    """
    if mapsize & (mapsize - 1):
        raise ValueError(f"plasma mapsize must be a power of two, got {mapsize}")
    m = torch.zeros(n, mapsize, mapsize, dtype=torch.float64, device=like.device)
    step = mapsize
    wibble = 100.0
    f64 = torch.zeros((), dtype=torch.float64, device=like.device)

    def wibbled_mean(a: Tensor) -> Tensor:
        return a / 4 + wibble * uniform(generator, a.shape, -wibble, wibble, f64)

    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        square = corners + corners.roll(-1, dims=1)
        square = square + square.roll(-1, dims=2)
        m[:, half::step, half::step] = wibbled_mean(square)
        dr = m[:, half::step, half::step]
        ul = m[:, 0::step, 0::step]
        lt = dr + dr.roll(1, dims=1) + ul + ul.roll(-1, dims=2)
        m[:, 0::step, half::step] = wibbled_mean(lt)
        td = dr + dr.roll(1, dims=2) + ul + ul.roll(-1, dims=1)
        m[:, half::step, 0::step] = wibbled_mean(td)
        step //= 2
        wibble /= wibbledecay
    m = m - m.amin(dim=(1, 2), keepdim=True)
    m = m / m.amax(dim=(1, 2), keepdim=True)
    return m.to(like.dtype)


def sample_bilinear(x: Tensor, ys: Tensor, xs: Tensor, mode: str) -> Tensor:
    """Bilinear samples of x [N, C, H, W] at float pixel coordinates ys, xs [N, H', W'].

    Neighbours outside the image follow the border rule `mode` (as OpenCV's remap/warpAffine
    and scipy's map_coordinates with order=1 do).
    """
    n, c, h, w = x.shape
    y0f, x0f = ys.floor(), xs.floor()
    fy = (ys - y0f).reshape(n, 1, -1)
    fx = (xs - x0f).reshape(n, 1, -1)
    y0, x0 = y0f.long().reshape(n, 1, -1), x0f.long().reshape(n, 1, -1)
    rows = (border_index(y0, h, mode) * w, border_index(y0 + 1, h, mode) * w)
    cols = (border_index(x0, w, mode), border_index(x0 + 1, w, mode))
    flat = x.reshape(n, c, h * w)

    def at(r: Tensor, q: Tensor) -> Tensor:
        return flat.gather(2, (r + q).expand(n, c, -1))

    top = torch.lerp(at(rows[0], cols[0]), at(rows[0], cols[1]), fx)
    bottom = torch.lerp(at(rows[1], cols[0]), at(rows[1], cols[1]), fx)
    return torch.lerp(top, bottom, fy).view(n, c, *ys.shape[1:])


def to_uint8_hwc(x: Tensor) -> np.ndarray:
    """[N, 3, H, W] in [0, 1] -> rounded uint8 [N, H, W, 3] numpy (for PIL-based corruptions)."""
    return (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8_hwc(images: np.ndarray, like: Tensor) -> Tensor:
    chw = to_chw(np.ascontiguousarray(images), like.device, contiguous=False)
    return to_unit(chw, torch.preserve_format).to(like.dtype)
