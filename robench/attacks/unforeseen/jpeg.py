"""JPEG-Linf and JPEG-L1 (Kang et al. 2019): perturb the quantised DCT coefficients.

The image (0-255 scale) goes through a JPEG encoder without the final rounding: JFIF YCbCr,
4:2:0 chroma subsampling (2 x 2 means), 8 x 8 blocks (images whose sides are not multiples
of 16 are edge-padded, and cropped back after decoding), level shift by 128, orthonormal
DCT-II, division by the standard quality-50 tables (ITU T.81 Annex K). The quantised
coefficients are perturbed and decoded back (dequantise, inverse DCT, nearest-neighbour
chroma upsampling, RGB, clip to [0, 255]):

    q_adv = q + NOISE_SCALE * v,   v: one variable per coefficient (Y, Cb, Cr blocks).

NOISE_SCALE = 1/2 is advex-uar's: its rounding noise lambda * (noise - 1/2) with
noise = 1/2 + v / (2 lambda) adds v / 2 to each quantised coefficient. A 32x32 image has
16 Y blocks and 2 x 2 blocks for each of Cb and Cr (16x16 after subsampling): 1,536 variables.
With v = 0 the result is x up to 4:2:0 chroma loss (and float rounding): Kang et al.'s attack
includes the subsampling, and so does this one.

Strengths (Kang et al.'s scale for v):
- jpeg_linf: |v_i| <= eps, so every quantised coefficient moves by at most eps / 2
  quantisation steps (a DCT coefficient by eps / 2 * Q[u, v] on the 0-255 scale). Ascent:
  sign steps of eps / sqrt(steps) by default, clipped; uniform start in the box.
- jpeg_l1: ||v||_1 <= eps and |v_i| <= L1_COORD_MAX (advex-uar's `l1_max`). Optimised by
  Frank-Wolfe as in advex-uar: the linear maximiser over that set puts L1_COORD_MAX (the
  last one the remainder) on the ceil(eps / L1_COORD_MAX) coefficients of largest |gradient|,
  signed like the gradient; v <- v + gamma_t (s - v) with gamma_t = 1 / (t + 1) (advex-uar),
  or a constant gamma = step_size in (0, 1] if one is given. Iterates are convex combinations
  of feasible points, so no projection is needed. The start is uniform in the L1 ball.
  Kang et al.'s step size eps / sqrt(steps) is listed in their calibration but unused by
  their Frank-Wolfe loop; it is likewise not used here.
"""

from __future__ import annotations

import functools
import math
from abc import abstractmethod

import torch
import torch.nn.functional as F

from robench.attacks.registry import ATTACKS
from robench.attacks.unforeseen.base import UnforeseenAttack, eps_step, uniform
from robench.errors import ConfigError

NOISE_SCALE = 0.5  # quantised coefficient change per unit of v (advex-uar)
L1_COORD_MAX = 2.0  # advex-uar's per-coefficient cap for the L1 attack (l1_max)
BLOCK = 8
MCU = 16  # 4:2:0 minimum coded unit: sides are padded to a multiple of this

Y_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)  # luminance, rows = vertical frequency
C_TABLE_TOP_LEFT = ((17, 18, 24, 47), (18, 21, 26, 66), (24, 26, 56, 99), (47, 66, 99, 99))
C_TABLE_REST = 99  # chrominance table: 99 outside the top-left 4 x 4

RGB_TO_YCBCR = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)  # JFIF, full range; Cb and Cr are offset by +128
YCBCR_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))


def _tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(DCT matrix, luminance table, chrominance table), float32 on `device`."""
    k = torch.arange(BLOCK, dtype=torch.float64)
    dct = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / (2 * BLOCK))
    dct[0] *= math.sqrt(1 / BLOCK)
    dct[1:] *= math.sqrt(2 / BLOCK)  # orthonormal: coefficients = D @ block @ D.T
    c_table = torch.full((BLOCK, BLOCK), float(C_TABLE_REST))
    c_table[:4, :4] = torch.tensor(C_TABLE_TOP_LEFT, dtype=torch.float32)
    as_dev = {"device": device, "dtype": torch.float32}
    return dct.to(**as_dev), torch.tensor(Y_TABLE).to(**as_dev), c_table.to(**as_dev)


def _to_blocks(plane: torch.Tensor) -> torch.Tensor:
    """(N, H, W) -> (N, H/8 * W/8, 8, 8), blocks in row-major order."""
    n, h, w = plane.shape
    blocks = plane.reshape(n, h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(2, 3)
    return blocks.reshape(n, -1, BLOCK, BLOCK)


def _from_blocks(blocks: torch.Tensor, h: int, w: int) -> torch.Tensor:
    n = len(blocks)
    grid = blocks.reshape(n, h // BLOCK, w // BLOCK, BLOCK, BLOCK).transpose(2, 3)
    return grid.reshape(n, h, w)


class JPEGCodec:
    """Differentiable JPEG encode (to unrounded quantised coefficients) and decode."""

    def __init__(self, height: int, width: int, device: torch.device) -> None:
        self.height, self.width = height, width
        self.ph, self.pw = -(-height // MCU) * MCU, -(-width // MCU) * MCU
        self.dct, y_table, c_table = _tables(device)
        self.n_luma = (self.ph // BLOCK) * (self.pw // BLOCK)
        self.n_chroma = self.n_luma // 4
        # Quantisation step of every coefficient, in the flat (Y | Cb | Cr) layout.
        self.steps = torch.cat(
            [
                y_table.expand(self.n_luma, -1, -1),
                c_table.expand(2 * self.n_chroma, -1, -1),
            ]
        ).reshape(-1)
        self.to_ycc = torch.tensor(RGB_TO_YCBCR, device=device)
        self.to_rgb = torch.tensor(YCBCR_TO_RGB, device=device)
        self.chroma_shift = torch.tensor([0.0, 128.0, 128.0], device=device).view(1, 3, 1, 1)

    @property
    def size(self) -> int:
        return (self.n_luma + 2 * self.n_chroma) * BLOCK * BLOCK

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (N, 3, H, W) -> quantised coefficients (N, size), not rounded."""
        pad = (0, self.pw - self.width, 0, self.ph - self.height)
        pixels = F.pad(x * 255, pad, mode="replicate") if any(pad) else x * 255
        ycc = torch.einsum("ij,njhw->nihw", self.to_ycc, pixels) + self.chroma_shift
        luma = ycc[:, 0]
        chroma = F.avg_pool2d(ycc[:, 1:], 2)
        blocks = torch.cat(
            [_to_blocks(luma), _to_blocks(chroma[:, 0]), _to_blocks(chroma[:, 1])], 1
        )
        coeffs = self.dct @ (blocks - 128) @ self.dct.T
        return coeffs.reshape(len(x), -1) / self.steps

    def decode(self, q: torch.Tensor) -> torch.Tensor:
        """Quantised coefficients (N, size) -> images in [0, 1] (N, 3, H, W)."""
        n = len(q)
        blocks = self.dct.T @ (q * self.steps).reshape(n, -1, BLOCK, BLOCK) @ self.dct + 128
        luma = _from_blocks(blocks[:, : self.n_luma], self.ph, self.pw)
        cb, cr = (
            _from_blocks(part, self.ph // 2, self.pw // 2)
            for part in blocks[:, self.n_luma :].split(self.n_chroma, 1)
        )
        chroma = torch.stack((cb, cr), 1).repeat_interleave(2, 2).repeat_interleave(2, 3)
        ycc = torch.cat((luma[:, None], chroma), 1) - self.chroma_shift
        rgb = torch.einsum("ij,njhw->nihw", self.to_rgb, ycc)
        return (rgb[:, :, : self.height, : self.width].clamp(0, 255)) / 255


@functools.lru_cache(maxsize=16)
def jpeg_codec(height: int, width: int, device: torch.device) -> JPEGCodec:
    """One codec (its constant tables) per image size and device."""
    return JPEGCodec(height, width, device)


class _JPEGAttack(UnforeseenAttack):
    def init_variables(self, x, generator):
        if x.shape[1] != 3:
            raise ValueError(f"{self.name} needs RGB images, got {x.shape[1]} channels")
        codec = jpeg_codec(x.shape[2], x.shape[3], x.device)
        with torch.no_grad():
            q = codec.encode(x)  # the clean image's coefficients: encoded once per batch
        return self.random_start((len(x), codec.size), x, generator), {"coefficients": q}

    def render(self, x, v, context):
        codec = jpeg_codec(x.shape[2], x.shape[3], x.device)
        return codec.decode(context["coefficients"] + NOISE_SCALE * v)

    @abstractmethod
    def random_start(self, shape, x, generator) -> torch.Tensor:
        """A random point in this attack's ball over the coefficient variables (per norm)."""


class JPEGLinf(_JPEGAttack):
    name = "jpeg_linf"
    strength_unit = "L-inf bound on v (quantised coefficients move by at most eps / 2)"

    def default_step_size(self) -> float:
        return eps_step(self.eps, self.steps)

    def random_start(self, shape, x, generator):
        return (2 * uniform(shape, x, generator) - 1) * self.eps

    def ascend(self, v, grad, context, it):
        return (v + self.step_size * grad.sign()).clamp(-self.eps, self.eps)

    def budget_excess(self, v, context):
        return ((v.abs().amax(1) - self.eps) / max(self.eps, 1e-12)).clamp_min(0)


class JPEGL1(_JPEGAttack):
    name = "jpeg_l1"
    strength_unit = "L1 bound on v (and |v_i| <= 2)"

    def __init__(
        self,
        eps: float,
        steps: int = 200,
        step_size: float | None = None,
        *,
        coord_max: float = L1_COORD_MAX,
        bn_mode: str = "eval",
    ) -> None:
        super().__init__(eps, steps, step_size, bn_mode=bn_mode)
        if step_size is not None and not step_size <= 1:
            raise ConfigError("jpeg_l1: step_size, if given, is a Frank-Wolfe weight in (0, 1]")
        if not coord_max > 0:
            raise ConfigError("jpeg_l1: coord_max must be > 0")
        self.coord_max = float(coord_max)
        self.fixed_gamma = step_size

    def default_step_size(self) -> float:
        return eps_step(self.eps, self.steps)  # reported only; Frank-Wolfe uses 1 / (t + 1)

    def random_start(self, shape, x, generator):
        # Uniform in the L1 ball: signed Exp(1) draws over their sum plus one more Exp(1).
        draws = -torch.log1p(-uniform((shape[0], shape[1] + 1), x, generator))
        signs = torch.where(uniform(shape, x, generator) < 0.5, -1.0, 1.0)
        v = signs * draws[:, :-1] / draws.sum(1, keepdim=True) * self.eps
        return v.clamp(-self.coord_max, self.coord_max)

    def ascend(self, v, grad, context, it):
        count = min(max(math.ceil(self.eps / self.coord_max), 1), v.shape[1])
        fill = (self.eps - self.coord_max * torch.arange(count, device=v.device)).clamp(
            0, self.coord_max
        )
        top = grad.abs().topk(count, dim=1).indices
        vertex = torch.zeros_like(v).scatter_(1, top, grad.gather(1, top).sign() * fill)
        gamma = self.fixed_gamma if self.fixed_gamma is not None else 1 / (it + 1)
        return v + gamma * (vertex - v)

    def budget_excess(self, v, context):
        l1 = (v.abs().sum(1) - self.eps) / max(self.eps, 1e-12)
        box = (v.abs().amax(1) - self.coord_max) / self.coord_max
        return torch.maximum(l1, box).clamp_min(0)


@ATTACKS.register("jpeg_linf")
def jpeg_linf(
    eps: float, steps: int = 200, step_size: float | None = None, bn_mode: str = "eval"
) -> JPEGLinf:
    return JPEGLinf(eps, steps, step_size, bn_mode=bn_mode)


@ATTACKS.register("jpeg_l1")
def jpeg_l1(
    eps: float,
    steps: int = 200,
    step_size: float | None = None,
    bn_mode: str = "eval",
    coord_max: float = L1_COORD_MAX,
) -> JPEGL1:
    return JPEGL1(eps, steps, step_size, coord_max=coord_max, bn_mode=bn_mode)
