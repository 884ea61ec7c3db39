"""Where and how tensors run: one object so the trainer and evaluator share the CUDA fast path.

On CUDA: bf16 autocast, channels_last, cuDNN autotuning (every input has the same shape) and
(optionally) torch.compile. On CPU everything is plain float32, which is what tests and CI
use; the API is the same either way.

Under torchrun, selecting the runtime also joins the process group (`robench.distributed`),
and "auto"/"cuda" mean this process's GPU, cuda:LOCAL_RANK.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import torch
from torch import nn

from robench import distributed
from robench.errors import ConfigError

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """`precision` if it is one robench evaluates in, else a one-line error."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r} must be one of {', '.join(PRECISIONS)}")
    return precision


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    compile: bool

    @classmethod
    def select(
        cls,
        device: str = "auto",
        *,
        amp: bool = True,
        channels_last: bool = True,
        compile: bool = False,
    ) -> Runtime:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but CUDA is not available here")
        layout = distributed.from_env()
        if dev.type == "cuda" and dev.index is None and layout.enabled:
            dev = torch.device("cuda", layout.local_rank)  # one GPU per process
        on_cuda = dev.type == "cuda"
        if on_cuda:
            torch.backends.cudnn.benchmark = True  # fixed input shapes: autotune once
        distributed.setup(dev)
        return cls(
            device=dev,
            amp_dtype=torch.bfloat16 if (amp and on_cuda) else None,
            channels_last=channels_last and on_cuda,
            compile=compile and on_cuda,
        )

    @property
    def precision(self) -> str:
        """What forward passes run in: "bf16" under bf16 autocast, else "fp32"."""
        return "bf16" if self.amp_dtype == torch.bfloat16 else "fp32"

    def for_evaluation(self, precision: str) -> Runtime:
        """This runtime for an evaluation in `precision`: fp32 (no autocast; the default,
        because published robust accuracies are fp32 and bf16 logits flip near-tie
        predictions) or bf16 (autocast, on any device). Training keeps its own setting."""
        check_precision(precision)
        return replace(self, amp_dtype=torch.bfloat16 if precision == "bf16" else None)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move a model here in the right memory format (in place; returns it for chaining)."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def maybe_compile(self, model: nn.Module) -> nn.Module:
        """A compiled view for forward passes; the original module keeps owning the weights."""
        return torch.compile(model) if self.compile else model

    def describe(self) -> str:
        """The device column of a leaderboard row: 'cpu' or the GPU's name."""
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return "cpu"

    def generator(self, seed: int) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        return gen
