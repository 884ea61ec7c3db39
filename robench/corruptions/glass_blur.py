"""Glass blur: Gaussian blur, locally scramble pixels, blur again (frosted-glass look).

The official loop visits pixels (h, w) from the bottom-right to the top-left and "swaps" each
with a random neighbour (h + dy, w + dx), dy, dx drawn by numpy's randint(-1, 1), i.e. from
{-1, 0}. The swap is written `x[h, w], x[h2, w2] = x[h2, w2], x[h, w]` on numpy views, which
copies instead of swapping: x[h, w] takes its neighbour's value and the neighbour keeps its
own. That neighbour lies above or left of (h, w), so the scan has not touched it yet, and each
pass is exactly one parallel gather: new[h, w] = old[h + dy, w + dx] for 2 <= h, w < 32. This
file does that gather for the whole batch in one step, no per-pixel loop.
"""

import torch
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import at_severity, randint, to_uint8_levels
from robench.corruptions.registry import CORRUPTIONS

# (Gaussian sigma, max_delta, iterations of the scramble)
PARAMS = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))
SCAN_START = 2  # the scan covers rows and columns 2 .. 31: range(32 - 1, 1, -1)


def scramble(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """One pass of the official loop; dy, dx: [N, H - 2, W - 2] offsets in {-1, 0}."""
    n, c, h, w = x.shape
    lo = SCAN_START
    rows = torch.arange(lo, h, device=x.device).view(1, -1, 1) + dy
    cols = torch.arange(lo, w, device=x.device).view(1, 1, -1) + dx
    idx = (rows * w + cols).view(n, 1, -1).expand(n, c, -1)
    out = x.clone()
    out[:, :, lo:, lo:] = x.reshape(n, c, h * w).gather(2, idx).view(n, c, h - lo, w - lo)
    return out


@CORRUPTIONS.register("glass_blur")
def glass_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    sigma, max_delta, iterations = at_severity(PARAMS, x, severity)
    # with max_delta 1 every source is still unvisited when read (see the module docstring)
    assert max_delta == 1, "the parallel form is exact for max_delta 1 (all CIFAR severities)"
    out = to_uint8_levels(_ops.gaussian_blur(x, sigma))  # the official code stores uint8 here
    n, _, h, w = x.shape
    for _ in range(iterations):
        dy, dx = randint(generator, (2, n, h - SCAN_START, w - SCAN_START), -1, 1, x)
        out = scramble(out, dy, dx)
    return _ops.gaussian_blur(out, sigma).clamp(0, 1)
