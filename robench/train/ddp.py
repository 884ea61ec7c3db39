"""A model trained by several processes that still computes what one process would.

DistributedDataParallel averages the ranks' gradients; for that average to be the gradient of
the global batch's mean loss, two things must hold besides the data split: each rank's loss is
scaled by its share of the global batch (`shard_loss`, exact for uneven slices too), and
BatchNorm normalises with the statistics of the global batch, not of the rank's slice. The
second is `sync_bn` (a protocol key, default true): torch's SyncBatchNorm on CUDA, and on the
CPU (which SyncBatchNorm does not support; gloo is what tests and CI use) `GlobalBatchNorm2d`,
which combines the ranks' per-channel counts, means and squared deviations in one collective.
Either way the running statistics, and so checkpoints, equal a single process's up to float
rounding; the state-dict keys are BatchNorm's.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from robench.distributed import DistContext


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, differentiable: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of all ranks' inputs together.

    Each rank's count, mean and sum of squared deviations per channel are exchanged (one
    differentiable all-reduce of a rank-indexed buffer) and combined with Chan's parallel
    formula, which stays exact where E[x^2] - E[x]^2 would cancel. In eval mode, or alone, it is
    plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        world, rank = dist.get_world_size(), dist.get_rank()
        xf = x if x.dtype in (torch.float32, torch.float64) else x.float()
        n = x.numel() // x.shape[1]
        local_mean = xf.mean((0, 2, 3)) if n else xf.new_zeros(x.shape[1])
        local_m2 = ((xf - local_mean.view(1, -1, 1, 1)) ** 2).sum((0, 2, 3))
        local = torch.stack([torch.full_like(local_mean, float(n)), local_mean, local_m2])
        slot = F.one_hot(torch.tensor(rank, device=x.device), world).to(xf.dtype)
        counts, means, m2s = _AllReduceSum.apply(slot.view(-1, 1, 1) * local).unbind(1)
        total = counts.sum(0)
        mean = (counts * means).sum(0) / total
        var = (m2s + counts * (means - mean) ** 2).sum(0) / total
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum
                if momentum is None:  # cumulative average, as BatchNorm does
                    momentum = 1.0 / float(self.num_batches_tracked)
                unbiased = var * total / (total - 1).clamp_min(1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = (1, -1, 1, 1)
        out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm2d of `module` (in place) as one that normalises over all ranks.

    Parameters and buffers are the same objects, so a frozen trunk stays frozen and the
    optimiser, checkpoints and `requires_grad` flags are untouched.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            module.add_module(name, _global_copy(child))
        else:
            convert_batchnorm(child, device)
    return module


def _global_copy(bn: nn.BatchNorm2d) -> GlobalBatchNorm2d:
    out = GlobalBatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    out.weight, out.bias = bn.weight, bn.bias
    out.running_mean, out.running_var = bn.running_mean, bn.running_var
    out.num_batches_tracked = bn.num_batches_tracked
    out.train(bn.training)
    return out


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """`model` for the training forward: DistributedDataParallel across ranks, itself alone.

    Frozen parameters (F1/F2's trunk) have requires_grad False, so DDP leaves them out and
    needs no search for unused parameters.
    """
    if not ctx.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def shard_loss(
    logits: torch.Tensor, y: torch.Tensor, world_size: int, total: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to backpropagate, mean loss of these examples) for one rank's slice of `total`.

    DDP divides the summed gradients by world_size, so the loss to backpropagate is this
    rank's summed cross-entropy times world_size / total: the ranks' average is then the
    gradient of the global batch's mean loss, also when slices differ in size.
    """
    summed = F.cross_entropy(logits, y, reduction="sum")
    return summed * (world_size / total), summed.detach() / max(len(y), 1)
