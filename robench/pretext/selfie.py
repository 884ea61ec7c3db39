"""Selfie (Trinh et al. 2019): which of the masked patches belongs at each masked position?

The paper's setting (PROTOCOL.md): a 32x32 image is 16 patches of 8x8. Per step one random
order of the 16 positions (shared by the batch) marks 4 as masked and 12 as visible. The patch
network is the trunk theta_p: each patch is embedded on its own and global-average-pooled to
a C-d vector. An attention-pooling transformer (theta_pc) reads a learnable summary token plus
the 12 visible embeddings and returns a summary u. For masked position i the query is u plus
i's position embedding, and the logit of candidate j is <query_i, embedding of candidate j>;
the loss is a 4-way cross-entropy per masked position, summed over positions. The adversary
perturbs the whole image, so visible context and candidates are attacked together.

Choices PROTOCOL leaves open, made here:
- Position embeddings are a learned row table (4, C) plus a learned column table (4, C); they
  are added both to the queries (as PROTOCOL says) and to the visible embeddings, since the
  transformer cannot otherwise tell where a visible patch came from.
- Logits are scaled by 1 / sqrt(C), as in dot-product attention: with C = 1024 the raw dot
  products would saturate the softmax at initialisation.
- No softmax before the cross-entropy (the authors' code applied one: a double softmax).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from robench.models import Classifier
from robench.pretext.base import PretextBatch, PretextTask
from robench.pretext.jigsaw import GRID, tile_size, to_tiles
from robench.pretext.registry import PRETEXTS

NUM_PATCHES = GRID * GRID
NUM_MASKED = 4
SUMMARY_INIT_STD = 0.02  # BERT / ViT initialisation of a learned token
# Row and column tables start at std 1/sqrt(2), so their sum has unit variance like the
# LayerNorm-ed summary u it is added to: the queries differ by position from the first step.
# (At std 0.02 the four queries start nearly equal and training stalls for dozens of steps.)
POSITION_INIT_STD = 2**-0.5


@PRETEXTS.register("selfie")
class Selfie(PretextTask):
    """Masked-patch selection with the trunk as patch network and a transformer as pooling."""

    name: ClassVar[str] = "selfie"
    default_lr_max: ClassVar[float] = 0.025
    default_lr_min: ClassVar[float] = 1e-6

    def __init__(
        self,
        backbone: Classifier,
        num_layers: int = 13,
        num_heads: int = 16,
        ffn_dim: int = 2048,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        width = backbone.trunk_channels  # d_model: the trunk's pooled patch embedding size
        if num_heads < 1 or width % num_heads:
            raise ValueError(
                f"Selfie: num_heads {num_heads} must divide d_model = trunk_channels {width}"
            )
        self.num_layers, self.num_heads = num_layers, num_heads
        self.ffn_dim, self.dropout = ffn_dim, dropout
        self.width = width
        layer = nn.TransformerEncoderLayer(
            width, num_heads, ffn_dim, dropout, batch_first=True, norm_first=True
        )
        # Pre-norm layers leave the residual stream unnormalised, hence the final LayerNorm.
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(width), enable_nested_tensor=False
        )
        self.summary = nn.Parameter(torch.randn(1, 1, width) * SUMMARY_INIT_STD)
        self.row_embedding = nn.Parameter(torch.randn(GRID, width) * POSITION_INIT_STD)
        self.col_embedding = nn.Parameter(torch.randn(GRID, width) * POSITION_INIT_STD)

    def position_embedding(self, positions: torch.Tensor) -> torch.Tensor:
        """Row plus column embedding of grid positions (row-major indices 0..15)."""
        return self.row_embedding[positions // GRID] + self.col_embedding[positions % GRID]

    def make_batch(self, x: torch.Tensor, generator: torch.Generator) -> PretextBatch:
        """One order for the batch; per example, a random order of the 4 candidate patches.

        extra["order"] (16,): order[:4] are the masked positions, order[4:] the visible ones.
        extra["candidates"] (N, 4): candidate j of example n is the patch at masked position
        order[candidates[n, j]]. targets (N, 4): for masked position i, the j with
        candidates[n, j] == i (the inverse permutation).
        """
        tile_size(x)  # refuse a bad image shape now rather than inside an attack
        device = generator.device
        order = torch.randperm(NUM_PATCHES, generator=generator, device=device)
        noise = torch.rand(len(x), NUM_MASKED, generator=generator, device=device)
        candidates = noise.argsort(1)
        targets = candidates.argsort(1)
        return PretextBatch(
            inputs=x,
            targets=targets.to(x.device),
            extra={"order": order.to(x.device), "candidates": candidates.to(x.device)},
        )

    def pose(self, x: torch.Tensor, batch: PretextBatch) -> torch.Tensor:
        """The identity: Selfie's input is the whole image; the masking lives in batch.extra."""
        return x

    def embed_patches(self, backbone: Classifier, inputs: torch.Tensor) -> torch.Tensor:
        """(N, 16, C): every patch through the trunk on its own, globally average-pooled."""
        patches = to_tiles(inputs)
        n = len(inputs)
        features = backbone.features(patches.reshape(n * NUM_PATCHES, *patches.shape[2:]))
        return features.mean((2, 3)).reshape(n, NUM_PATCHES, -1)

    def logits(
        self, backbone: Classifier, inputs: torch.Tensor, batch: PretextBatch
    ) -> torch.Tensor:
        """(N, 4 candidates, 4 masked positions): cross-entropy layout for targets (N, 4)."""
        order, candidates = batch.extra["order"], batch.extra["candidates"]
        masked, visible = order[:NUM_MASKED], order[NUM_MASKED:]
        embeddings = self.embed_patches(backbone, inputs)
        n, _, width = embeddings.shape

        context = embeddings[:, visible] + self.position_embedding(visible)
        tokens = torch.cat([self.summary.expand(n, -1, -1).to(context.dtype), context], 1)
        summary = self.encoder(tokens)[:, 0]  # u, after the encoder's final LayerNorm

        queries = summary.unsqueeze(1) + self.position_embedding(masked)  # (N, 4 positions, C)
        index = candidates.unsqueeze(-1).expand(-1, -1, width)
        candidate_embeddings = embeddings[:, masked].gather(1, index)  # (N, 4 candidates, C)
        scores = torch.bmm(candidate_embeddings, queries.transpose(1, 2))
        return scores / math.sqrt(width)

    def config(self) -> dict[str, Any]:
        return {
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "ffn_dim": self.ffn_dim,
            "dropout": self.dropout,
        }
