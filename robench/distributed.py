"""Several processes, one run: who this process is under torchrun, and the collectives robench uses.

`torchrun --nproc_per_node N -m robench ...` starts N copies of the command and tells each its
place through RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. `setup` reads them
once and joins the process group (NCCL on CUDA, gloo on CPU); every rank then computes a
share of the work and the shares are combined with the few collectives below, so every rank
ends up with the same global numbers while only rank 0 writes files.

A single process (no WORLD_SIZE, or 1) never creates a process group: every helper is then the
identity or a no-op, and the single-process code path is exactly what it always was.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from robench.errors import ConfigError

T = TypeVar("T")

# Ranks wait at barriers while rank 0 alone does some work (pretraining, AutoAttack), which
# can take hours; torchrun ends the whole group as soon as any rank fails, so a long timeout
# only delays the report of a genuine deadlock.
TIMEOUT = datetime.timedelta(hours=12)


@dataclass(frozen=True)
class Shard:
    """Rows [start, stop) of a global batch of `total` rows: one rank's contiguous slice."""

    start: int
    stop: int
    total: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def take(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor[self.start : self.stop]


@dataclass(frozen=True)
class Round:
    """One round of a sharded loop over batches: rank r takes `batches[r]`, if there is one."""

    batches: range  # global batch indices, in rank order
    mine: int | None  # this rank's batch index; None when the round has fewer batches than ranks


@dataclass(frozen=True)
class DistContext:
    """This process's place among the processes of one run (rank 0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process: collectives are real and work is sharded."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    def shard(self, total: int) -> Shard:
        """This rank's contiguous slice of a global batch of `total` rows (sizes differ by <= 1)."""
        start = total * self.rank // self.world_size
        stop = total * (self.rank + 1) // self.world_size
        return Shard(start, stop, total)

    def rounds(self, num_batches: int, start: int = 0) -> Iterator[Round]:
        """Batches `start`..`num_batches - 1` in rounds of `world_size`: batch b goes to rank
        b % world_size (counted from `start`), so each round's gathered results are the next
        batches in order and a round is a natural unit to save for resuming."""
        for first in range(start, num_batches, self.world_size):
            batches = range(first, min(first + self.world_size, num_batches))
            mine = first + self.rank
            yield Round(batches, mine if mine < num_batches else None)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over ranks of `tensor` (a new tensor; `tensor` itself when alone)."""
        if not self.enabled:
            return tensor
        total = tensor.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    def gather_round(self, local: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """Concatenate, in rank order, rank r's first `sizes[r]` rows.

        `local` holds this rank's `sizes[rank]` rows (none, but the right trailing shape, for a
        rank without a batch this round). Rows are padded to the largest size for the
        collective and cut back after, so ranks with a short last batch or none at all take
        part in the same call.
        """
        if not self.enabled:
            return local
        sizes = sizes + [0] * (self.world_size - len(sizes))
        if len(local) != sizes[self.rank]:
            raise ValueError(
                f"rank {self.rank}: {sizes[self.rank]} rows expected, not {len(local)}"
            )
        is_bool = local.dtype == torch.bool
        dtype = torch.uint8 if is_bool else local.dtype  # gloo has no bool collectives
        padded = local.new_zeros((max(sizes), *local.shape[1:]), dtype=dtype)
        padded[: len(local)] = local.to(dtype)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        out = torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])
        return out.bool() if is_bool else out

    def barrier(self) -> None:
        if self.enabled:
            if dist.get_backend() == "nccl":
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def on_main(self, work: Callable[[], T]) -> T | None:
        """Run `work` on rank 0 only, the others waiting; rank 0 gets its result, others None.

        For work that is not worth sharding (or cannot be) and whose results reach the other
        ranks through files rank 0 writes: after this returns, those files exist.
        """
        result = work() if self.is_main else None
        self.barrier()
        return result


_current = DistContext()


def from_env() -> DistContext:
    """The context torchrun's environment describes (a single process when it describes none)."""
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun sets them)"
        ) from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ConfigError(f"RANK {rank} / WORLD_SIZE {world_size}: not a valid process layout")
    return DistContext(rank, world_size, local_rank)


def current() -> DistContext:
    """This process's context: single-process until `setup` has joined a process group."""
    return _current


def setup(device: torch.device) -> DistContext:
    """Join the process group torchrun describes (once; later calls return the context).

    NCCL for CUDA devices, gloo for the CPU. Alone (WORLD_SIZE unset or 1) nothing is created.
    """
    global _current
    ctx = from_env()
    if not ctx.enabled or dist.is_initialized():
        if ctx.enabled:
            _current = ctx
        return _current
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise ConfigError(
            f"WORLD_SIZE is {ctx.world_size} but MASTER_ADDR/MASTER_PORT are not set; "
            "start several processes with torchrun"
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=ctx.rank, world_size=ctx.world_size, timeout=TIMEOUT)
    _current = ctx
    return ctx


def shutdown() -> None:
    """Leave the process group (at exit; a no-op when there is none)."""
    global _current
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _current = DistContext()


def env_rank() -> int:
    """This process's rank per the environment, before (or without) `setup`: who prints errors."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0
