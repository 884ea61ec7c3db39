"""Per-example correctness, clean and under attack: the one place accuracy is computed.

Flags (not just counts) are kept because later analyses need them per image: worst case over
several attacks, transfer overlaps, resuming an interrupted evaluation. An example counts as
robust only if it is classified correctly both clean and under attack. The crafted examples
themselves can be kept too, so a transfer analysis attacks other models with exactly the
examples this evaluation scored (same seed, batching and random stream).

Batch b's attack randomness comes from a generator seeded by (seed, b) alone, so an evaluation
resumed at batch b crafts exactly what an uninterrupted one would have, and so can rank
b % world_size under torchrun: the ranks' flags, gathered in rounds, are one process's flags.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from robench.attacks import Attack, model_mode
from robench.data import ArrayDataset, BatchIterator
from robench.data.batches import epoch_seed
from robench.distributed import DistContext
from robench.runtime import Runtime

_EVAL_STREAM = 11  # keeps evaluation seeds apart from training's (seed, epoch, step) seeds


def batch_generator(runtime: Runtime, seed: int, batch_index: int) -> torch.Generator:
    """The generator of batch `batch_index` of an evaluation seeded with `seed`."""
    return runtime.generator(epoch_seed(seed, batch_index, _EVAL_STREAM))


@dataclass
class Flags:
    clean: torch.Tensor  # bool (N,), on CPU
    robust: torch.Tensor | None  # bool (N,), clean & correct under attack
    seconds: float
    adversarial: torch.Tensor | None = None  # float32 (N, C, H, W) on CPU, if asked to keep

    @property
    def ta(self) -> float:
        return float(self.clean.float().mean()) * 100

    @property
    def ra(self) -> float | None:
        return None if self.robust is None else float(self.robust.float().mean()) * 100


def correct_flags(
    model: nn.Module,
    data: ArrayDataset,
    runtime: Runtime,
    batch_size: int,
    attack: Attack | None = None,
    seed: int = 0,
    on_batch: Callable[[int], None] | None = None,
    keep_adversarial: bool = False,
    dist_ctx: DistContext | None = None,
) -> Flags:
    """Classify `data` (in order) clean and, if given, under `attack` seeded with `seed`.

    With `keep_adversarial` (and an attack) the crafted examples come back in `adversarial`.
    With `dist_ctx` of several ranks, each classifies every world_size-th batch and every
    rank gets all the flags (and examples).
    """
    start = time.perf_counter()
    ctx = dist_ctx or DistContext()
    batches = BatchIterator(
        data, batch_size, device=runtime.device, channels_last=runtime.channels_last
    )
    clean, robust, adversarial = [], [], []
    with model_mode(model, train=False):
        for round_ in ctx.rounds(len(batches)):
            ok = torch.zeros(0, dtype=torch.bool, device=runtime.device)
            rob = ok
            x_adv = torch.zeros((0, *batches.images.shape[1:]), device=runtime.device)
            if round_.mine is not None:
                x, y = batches.batch(round_.mine)
                with torch.no_grad(), runtime.autocast():
                    ok = model(x).argmax(1) == y
                if attack is not None:
                    generator = batch_generator(runtime, seed, round_.mine)
                    x_adv = attack.perturb(model, x, y, generator)
                    with torch.no_grad(), runtime.autocast():
                        rob = ok & (model(x_adv).argmax(1) == y)
            sizes = [batches.batch_len(b) for b in round_.batches]
            clean.append(ctx.gather_round(ok, sizes))
            if attack is not None:
                robust.append(ctx.gather_round(rob, sizes))
                if keep_adversarial:
                    kept = ctx.gather_round(x_adv.detach().float().contiguous(), sizes)
                    adversarial.append(kept.cpu().contiguous())
            if on_batch is not None:
                on_batch(sum(sizes))
    return Flags(
        clean=torch.cat(clean).cpu(),
        robust=torch.cat(robust).cpu() if attack is not None else None,
        seconds=time.perf_counter() - start,
        adversarial=torch.cat(adversarial) if adversarial else None,
    )
