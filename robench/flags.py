"""Per-example correctness, clean and under attack: the one loop that scores a model.

Every accuracy robench reports comes from here: the eval suites' numbers, validation TA and RA
during training, the transfer analysis. Flags (not counts) are kept because later analyses
need them per image: worst cases over several attacks, transfer overlaps, paired tests,
resuming an interrupted evaluation. An example counts as robust only if it is classified
correctly both clean and under attack.

- Resumable: given a `FlagFile`, the flags are saved after every batch (round, under
  torchrun) and a rerun continues after the last saved one. Batch b's attack randomness comes
  from a generator seeded by (seed, b, the attack's stream) alone, so a resumed evaluation
  crafts exactly what an uninterrupted one would have.
- Sharded: under torchrun rank r takes batches r, r + N, ...; the flags are gathered in rounds,
  so every rank gets (and rank 0 stores) exactly one process's flags. An attack that cannot be
  shared out (AutoAttack owns its batching) runs on rank 0 while the others wait.
- Keeps the crafted examples when asked (`keep_examples`): in memory, or with a flag file on
  disk beside it (they come back on rank 0, which writes them), so the transfer analysis
  attacks other models with exactly the examples this evaluation scored instead of crafting
  them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from robench.attacks import Attack, model_mode
from robench.data import ArrayDataset, BatchIterator
from robench.data.batches import TensorBatches, epoch_seed
from robench.distributed import DistContext
from robench.runs.flag_files import FlagFile
from robench.runtime import Runtime

Batches = BatchIterator | TensorBatches


@dataclass(frozen=True)
class Flags:
    """One evaluation's per-example flags (bool numpy arrays over the n examples, in order)."""

    clean: np.ndarray
    robust: np.ndarray | None  # None without an attack
    seconds: float
    examples: torch.Tensor | None = None  # float32 (n, C, H, W) on the CPU, when kept
    warnings: frozenset[str] = frozenset()  # what the attack noticed (Attack.warnings)

    @property
    def measured(self) -> np.ndarray:
        """What the evaluation measures: robust flags under an attack, else clean ones."""
        return self.clean if self.robust is None else self.robust

    @property
    def ta(self) -> float:
        return percent(self.clean)

    @property
    def ra(self) -> float | None:
        return None if self.robust is None else percent(self.robust)


def percent(flags: np.ndarray) -> float:
    """Accuracy in % of a flag array (NaN for no examples)."""
    return float(np.mean(flags)) * 100 if len(flags) else float("nan")


def attack_generator(runtime: Runtime, attack: Attack, seed: int, batch: int) -> torch.Generator:
    """The generator batch `batch` of an evaluation seeded with `seed` attacks with."""
    return runtime.generator(epoch_seed(seed, batch, attack.seed_stream))


def compute_flags(
    model: nn.Module,
    data: ArrayDataset | Batches,
    *,
    runtime: Runtime,
    batch_size: int,
    attack: Attack | None = None,
    seed: int = 0,
    store: FlagFile | None = None,
    keep_examples: bool = False,
    on_batch: Callable[[int], None] | None = None,
    dist: DistContext | None = None,
) -> Flags:
    """Classify `data` (in order) clean and, if given, under `attack` seeded with `seed`.

    `data` is a data set (uint8 images) or ready float batches (`TensorBatches`). `store` makes
    it resumable; `keep_examples` returns the crafted examples (and stores them with `store`);
    `on_batch(k)` is called with the number of examples each round (resumed ones first).
    """
    ctx = dist or DistContext()
    if attack is not None and not attack.distributable and ctx.enabled:
        return _on_main_only(ctx, store, lambda: compute_flags(
            model, data, runtime=runtime, batch_size=batch_size, attack=attack, seed=seed,
            store=store, keep_examples=keep_examples, on_batch=on_batch, dist=DistContext(),
        ))  # fmt: skip
    keep = keep_examples and attack is not None
    if isinstance(data, ArrayDataset):
        size = attack.eval_batch_size(batch_size) if attack is not None else batch_size
        data = BatchIterator(data, size, device=runtime.device, channels_last=runtime.channels_last)
    start = time.perf_counter()
    clean, measured, start_batch, before = _resume(store, data, keep)
    if len(clean) and on_batch is not None:
        on_batch(len(clean))
    kept: list[torch.Tensor] = []
    with model_mode(model, train=False):
        for round_ in ctx.rounds(len(data), start_batch):
            ok = torch.zeros(0, dtype=torch.bool, device=runtime.device)
            robust, x_adv = ok, None
            if round_.mine is not None:
                x, y = data.batch(round_.mine)
                ok = _correct(model, x, y, runtime)
                robust = ok
                if attack is not None:
                    generator = attack_generator(runtime, attack, seed, round_.mine)
                    x_adv = attack.perturb(model, x, y, generator)
                    robust = ok & _correct(model, x_adv, y, runtime)
            sizes = [data.batch_len(b) for b in round_.batches]
            clean = np.concatenate([clean, _host(ctx.gather_round(ok, sizes))])
            measured = np.concatenate([measured, _host(ctx.gather_round(robust, sizes))])
            if keep:
                examples = _gather_examples(ctx, x_adv, data, sizes)
                if store is None:
                    kept.append(examples)
                elif ctx.is_main:  # on disk, one file per batch; read back whole at the end
                    for batch, part in zip(round_.batches, examples.split(sizes), strict=True):
                        store.save_examples(batch, part)
            if store is not None and ctx.is_main:
                store.save(clean, measured, before + time.perf_counter() - start)
            if on_batch is not None:
                on_batch(sum(sizes))
    examples = None
    if keep and store is None:
        examples = torch.cat(kept)
    elif keep and ctx.is_main:  # rank 0 wrote them; the other ranks may be ahead of it
        examples = store.load_examples(len(data))
    return Flags(
        clean=clean,
        robust=measured if attack is not None else None,
        seconds=before + time.perf_counter() - start,
        examples=examples,
        warnings=frozenset(attack.warnings) if attack is not None else frozenset(),
    )


def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    with torch.no_grad(), runtime.autocast():
        return model(x).argmax(1) == y


def _host(flags: torch.Tensor) -> np.ndarray:
    return flags.cpu().numpy().astype(bool)


def _resume(
    store: FlagFile | None, data: Batches, keep: bool
) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(clean, measured, first batch to do, seconds the stored part took) from the store;
    nothing without one.

    With `keep`, a batch whose examples were not stored (an earlier evaluation that did not
    keep them) is done again, and so is everything after it.
    """
    empty = np.zeros(0, dtype=bool)
    if store is None:
        return empty, empty, 0, 0.0
    stored = store.load()
    done = len(data) if len(stored) == data.num_examples else len(stored) // data.batch_size
    if keep:
        done = min(done, store.examples_done(len(data)))
    cut = min(done * data.batch_size, data.num_examples)
    seconds = stored.seconds * cut / len(stored) if len(stored) else 0.0
    return stored.clean[:cut], stored.measured[:cut], done, seconds


def _gather_examples(
    ctx: DistContext, x_adv: torch.Tensor | None, data: Batches, sizes: list[int]
) -> torch.Tensor:
    if x_adv is None:  # a rank without a batch this round: no rows, the right shape
        x, _ = data.batch(0)
        x_adv = x.new_zeros((0, *x.shape[1:]))
    return ctx.gather_round(x_adv.detach().float().contiguous(), sizes).cpu()


def _on_main_only(ctx: DistContext, store: FlagFile | None, work: Callable[[], Flags]) -> Flags:
    """Rank 0 computes (and stores) the flags; the others read them from the store after."""
    if store is None:
        raise ValueError("an attack that cannot be sharded needs a flag file under torchrun")
    flags = ctx.on_main(work)
    if flags is not None:
        return flags
    stored = store.load()
    return Flags(stored.clean, stored.measured, 0.0)
