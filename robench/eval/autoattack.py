"""AutoAttack (Croce & Hein 2020), standard version, through the `pyautoattack` package.

The standard version runs APGD-CE, APGD-T, FAB-T and Square, each only on the examples still
robust. robench calls it one chunk of images (CHUNK) at a time and stores the robust flags of every
finished chunk, so a killed evaluation resumes at the next chunk. (pyautoattack's own
`state_path` resume is not used: in 0.2.0 a restored state leaves `y_adv` undefined and the
state file is written in place, so a kill can leave it torn.) AutoAttack's sanity warnings
(randomised defence, probability outputs, zero gradients, Square beating the gradient attacks)
are captured from its logger and recorded as flags.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from robench.attacks import model_mode
from robench.data import ArrayDataset
from robench.data.batches import epoch_seed
from robench.eval.flagstore import FlagFile
from robench.runtime import Runtime

VERSION = "standard"
ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")
_AA_STREAM = 13
# Images per AutoAttack call: large enough that the later attacks (APGD-T, FAB-T, Square) run
# on full batches of the survivors, small enough that a killed evaluation loses little.
CHUNK = 1000
_WARNING_FLAGS = {
    "randomized defense": "aa_randomized",
    "probability distribution": "aa_softmax_output",
    "zero gradient": "aa_zero_gradients",
    "Square Attack has decreased": "aa_square_beats_gradient_attacks",
    "dynamic defense": "aa_dynamic",
    "target classes": "aa_n_classes",
}


class _Logits(nn.Module):
    """The model under the runtime's autocast, returning float32 logits for AutoAttack."""

    def __init__(self, model: nn.Module, runtime: Runtime) -> None:
        super().__init__()
        self.model = model
        self.runtime = runtime

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.runtime.autocast():
            return self.model(x).float()


class _FlagCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.flags: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for needle, flag in _WARNING_FLAGS.items():
            if needle in message:
                self.flags.add(flag)


def autoattack_flags(
    model: nn.Module,
    data: ArrayDataset,
    flag_file: FlagFile,
    *,
    eps: float,
    seed: int,
    runtime: Runtime,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, set[str]]:
    """Robust flags (correct clean and under AutoAttack) for `data`, resumed from `flag_file`."""
    from pyautoattack import AutoAttack

    done = flag_file.load()
    flags = list(done)
    if on_batch is not None and len(done):
        on_batch(len(done))
    collector = _FlagCollector()
    logger = logging.getLogger("auto-attack")
    logger.addHandler(collector)
    try:
        with model_mode(model, train=False):
            wrapped = _Logits(model, runtime).eval()
            chunk_size = max(CHUNK, batch_size)
            for start in range(len(done), len(data), chunk_size):
                chunk = start // chunk_size
                images = data.images[start : start + chunk_size]
                x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).contiguous()
                y = torch.from_numpy(data.labels[start : start + chunk_size])
                attack = AutoAttack(
                    wrapped,
                    eps=eps,
                    norm="Linf",
                    version=VERSION,
                    device=runtime.device,
                    seed=epoch_seed(seed, chunk, _AA_STREAM) % (2**31),
                )
                attack.verbose = False
                x_dev, y_dev = x.to(runtime.device), y.to(runtime.device)
                _, y_adv = attack.run_standard_evaluation(x_dev, y_dev, batch_size=batch_size)
                robust = (y_adv.to(y.device) == y).numpy()
                flags.extend(robust.tolist())
                flag_file.save(np.asarray(flags, dtype=bool))
                if on_batch is not None:
                    on_batch(len(y))
    finally:
        logger.removeHandler(collector)
    return np.asarray(flags, dtype=bool), collector.flags
