"""Where and how tensors run: one object so the trainer and evaluator share the CUDA fast path.

On CUDA: bf16 autocast, channels_last, cuDNN autotuning (every input has the same shape) and
(optionally) torch.compile. On CPU everything is plain float32, which is what tests and CI
use; the API is the same either way.

For tests only (not a user option): `ROBENCH_FAST_PATH_ON_CPU` forces the CUDA fast path on
the CPU, so the code a GPU runs is exercised in CI: bf16 autocast, channels_last and
torch.compile, with inductor (`=1`, what CUDA uses) or `=aot_eager` (the same graph capture
and compiled autograd, without code generation: seconds instead of a minute per graph).

Under torchrun, selecting the runtime also joins the process group (`robench.distributed`),
and "auto"/"cuda" mean this process's GPU, cuda:LOCAL_RANK.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace

import torch
from torch import nn

from robench import distributed
from robench.errors import ConfigError

PRECISIONS = ("fp32", "bf16")
FAST_PATH_ON_CPU = "ROBENCH_FAST_PATH_ON_CPU"
COMPILE_BACKENDS = {"1": "inductor", "inductor": "inductor", "aot_eager": "aot_eager"}


def forced_backend() -> str | None:
    """The compile backend `ROBENCH_FAST_PATH_ON_CPU` forces on the CPU (None: not forced)."""
    value = os.environ.get(FAST_PATH_ON_CPU, "")
    if value in ("", "0"):
        return None
    if value not in COMPILE_BACKENDS:
        raise ConfigError(f"{FAST_PATH_ON_CPU}={value!r} must be 1, inductor or aot_eager")
    return COMPILE_BACKENDS[value]


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
    compile_backend: str = "inductor"

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
        forced = forced_backend() if dev.type == "cpu" else None
        distributed.setup(dev)
        if forced is not None:  # tests: the fast path on the CPU, whatever the suite says
            return cls(dev, torch.bfloat16, channels_last=True, compile=True,
                       compile_backend=forced)  # fmt: skip
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
        """A compiled view for forward passes; the original module keeps owning the weights.

        `dynamic=False`: one static graph per input shape. By default a second shape makes
        TorchDynamo recompile with symbolic shapes, whose kernels round differently from the
        static ones, so the numbers would depend on which shapes came before: a run resumed
        mid-epoch (a fresh process, the static graph) would drift from the uninterrupted one
        (which had moved to the symbolic graph after its first validation)."""
        if not self.compile:
            return model
        return torch.compile(model, backend=self.compile_backend, dynamic=False)

    def describe(self) -> str:
        """The device column of a leaderboard row: 'cpu' or the GPU's name."""
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return "cpu"

    def generator(self, seed: int) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        return gen
