"""Jigsaw puzzles (Noroozi & Favaro 2016) on a 4x4 grid: which shuffle was applied?

The paper's setting (PROTOCOL.md): the image is cut into 16 tiles, shuffled by one of a fixed
set of 30 permutations or left alone (class 0), 31 classes; class 0 is drawn with probability
0.1 plus its uniform share. The shuffled image goes through the full backbone and a fresh 31-way
head, and the adversary perturbs the shuffled image.

The permutation set defines the classes, so it is a persistent buffer: it travels with every
state dict (and hence checkpoint), and a loaded model never depends on how the set was drawn.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from robench.models import Classifier, create
from robench.pretext.base import PretextBatch, PretextTask
from robench.pretext.registry import PRETEXTS

GRID = 4  # tiles per side: 4 x 4 tiles of 8 x 8 pixels on a 32 x 32 image
UNSHUFFLED_EXTRA = 0.1  # class 0's probability on top of its uniform share
CANDIDATES = 4000  # random permutations the greedy selection picks from


def tile_size(x: torch.Tensor, grid: int = GRID) -> int:
    """Side of one tile of a (N, C, H, W) batch; refuses images a grid cannot cut evenly."""
    h, w = x.shape[-2:]
    if h != w or h % grid:
        raise ValueError(f"images must be square with a side divisible by {grid}, got {h}x{w}")
    return h // grid


def to_tiles(x: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """(N, C, H, W) -> (N, grid * grid, C, H / grid, W / grid), tiles in row-major order."""
    n, c = x.shape[:2]
    t = tile_size(x, grid)
    return x.reshape(n, c, grid, t, grid, t).permute(0, 2, 4, 1, 3, 5).reshape(n, -1, c, t, t)


def from_tiles(tiles: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """Inverse of `to_tiles`: (N, grid * grid, C, t, t) -> (N, C, grid * t, grid * t)."""
    n, _, c, t, _ = tiles.shape
    return (
        tiles.reshape(n, grid, grid, c, t, t)
        .permute(0, 3, 1, 4, 2, 5)
        .reshape(n, c, grid * t, grid * t)
    )


def hamming_spread_permutations(
    count: int, size: int, seed: int, candidates: int = CANDIDATES
) -> np.ndarray:
    """`count` distinct non-identity permutations of `size` items, spread apart in Hamming distance.

    Noroozi & Favaro's recipe with a max-min criterion: draw random candidates, then greedily
    take the one whose minimum Hamming distance to everything chosen so far is largest. The
    identity (class 0) is seeded as already chosen, so every shuffle also differs from the
    unshuffled image in as many tiles as possible. Ties go to the lowest candidate index, so the
    set is a pure function of (count, size, seed, candidates).
    """
    rng = np.random.default_rng(seed)
    pool = rng.permuted(np.tile(np.arange(size), (candidates, 1)), axis=1)
    min_distance = (pool != np.arange(size)).sum(1)
    chosen = []
    for _ in range(count):
        best = int(min_distance.argmax())
        if min_distance[best] == 0:
            raise ValueError(f"only {len(chosen)} distinct permutations among {candidates}")
        chosen.append(pool[best])
        min_distance = np.minimum(min_distance, (pool != pool[best]).sum(1))
    return np.stack(chosen)


@PRETEXTS.register("jigsaw")
class Jigsaw(PretextTask):
    """(num_permutations + 1)-way shuffle classification on the full backbone."""

    name: ClassVar[str] = "jigsaw"
    default_lr_max: ClassVar[float] = 0.1
    default_lr_min: ClassVar[float] = 1e-6

    permutations: torch.Tensor

    def __init__(self, backbone: Classifier, num_permutations: int = 30, seed: int = 0) -> None:
        super().__init__()
        if num_permutations < 1:
            raise ValueError(f"num_permutations must be >= 1, got {num_permutations}")
        self.num_permutations = num_permutations
        self.seed = seed
        # Only the head is kept; the shared trunk is passed to `logits` on every call.
        self.head = create(backbone.arch, num_classes=num_permutations + 1).head
        table = hamming_spread_permutations(num_permutations, GRID * GRID, seed)
        self.register_buffer("permutations", torch.from_numpy(table).long(), persistent=True)

    @property
    def num_classes(self) -> int:
        return self.num_permutations + 1

    def class_probabilities(self) -> torch.Tensor:
        """Class 0 (unshuffled) gets UNSHUFFLED_EXTRA on top of the uniform share."""
        probs = torch.full((self.num_classes,), (1 - UNSHUFFLED_EXTRA) / self.num_classes)
        probs[0] += UNSHUFFLED_EXTRA
        return probs

    def shuffle(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Reassemble each image so output tile t shows input tile perm[t] of its label."""
        tiles = to_tiles(x)
        identity = torch.arange(GRID * GRID, device=x.device).unsqueeze(0)
        table = torch.cat([identity, self.permutations.to(x.device)])  # class 0 = identity
        source = table[labels]  # (N, 16): which input tile each output tile shows
        rows = torch.arange(len(x), device=x.device).unsqueeze(1)
        return from_tiles(tiles[rows, source])

    def make_batch(self, x: torch.Tensor, generator: torch.Generator) -> PretextBatch:
        """Draw a label per image (class 0 favoured) and shuffle the tiles accordingly."""
        probs = self.class_probabilities().to(generator.device)
        labels = torch.multinomial(probs, len(x), replacement=True, generator=generator)
        labels = labels.to(x.device)
        return PretextBatch(inputs=self.shuffle(x, labels), targets=labels)

    def pose(self, x: torch.Tensor, batch: PretextBatch) -> torch.Tensor:
        """x shuffled by the batch's permutations (its targets are the permutation classes)."""
        return self.shuffle(x, batch.targets)

    def logits(
        self, backbone: Classifier, inputs: torch.Tensor, batch: PretextBatch
    ) -> torch.Tensor:
        """(N, num_permutations + 1) logits for (possibly perturbed) shuffled images."""
        return self.head(backbone.features(inputs))

    def config(self) -> dict[str, Any]:
        return {"num_permutations": self.num_permutations, "seed": self.seed}
