"""The protocol dataclasses: every setting that determines a run's numbers, validated.

Defaults are the paper's (Sec. 4.2 and PROTOCOL.md). Suites override them per file and per
run; the typed builder rejects unknown keys and wrong types before anything trains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from robench.config.choices import BNMode, Norm, choices
from robench.epsilon import parse_eps
from robench.errors import ConfigError

# Protocol.auxiliary: heads trained jointly with the classifier (None: no auxiliary head).
AUXILIARY_TASKS = (None, "rotation")


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack by name with its constructor parameters (robench.attacks.factory).

    As a dict it is part of the key of every stored flag file the attack's evaluation writes.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.params)}


@dataclass(frozen=True)
class CrossCheckConfig:
    """The gradient-masking cross-check of white-box evaluations: Square with `queries` queries
    on a seeded subset of `images` test images (robench/eval/suites/cross_check.py); 0 images
    turns it off, and the rows say so in their flags."""

    images: int = 128
    queries: int = 300
    margin: float = 0.10  # fraction of the subset Square may fool beyond PGD unflagged

    def __post_init__(self) -> None:
        if self.images < 0:
            raise ConfigError(f"--cross-check-images must be >= 0, got {self.images}")
        if self.queries < 1:
            raise ConfigError(f"--cross-check-queries must be >= 1, got {self.queries}")
        if not (math.isfinite(self.margin) and 0 <= self.margin < 1):
            raise ConfigError(f"cross-check margin must be in [0, 1), got {self.margin}")


@dataclass(frozen=True)
class AttackConfig:
    """An L-inf/L2 PGD attack; eps and step size as fractions of the [0, 1] range ("8/255")."""

    eps: str = "8/255"
    step_size: str = "2/255"
    steps: int = 10
    restarts: int = 1
    norm: Norm = "linf"
    bn_mode: BNMode = "eval"

    def __post_init__(self) -> None:
        parse_eps(self.eps)
        parse_eps(self.step_size)
        if self.steps < 0 or self.restarts < 1:
            raise ConfigError(
                f"attack needs steps >= 0 and restarts >= 1, got {self.steps}, {self.restarts}"
            )
        if self.norm not in choices(Norm):
            raise ConfigError(f"attack norm {self.norm!r} must be one of {choices(Norm)}")
        if self.bn_mode not in choices(BNMode):
            raise ConfigError(f"attack bn_mode {self.bn_mode!r} must be one of {choices(BNMode)}")

    @property
    def eps_value(self) -> float:
        return parse_eps(self.eps)

    @property
    def step_value(self) -> float:
        return parse_eps(self.step_size)

    def spec(self, name: str = "pgd") -> AttackSpec:
        """These settings as a spec of the PGD family ("pgd", or "multi_pgd" for ensembles)."""
        return AttackSpec(
            name,
            {
                "eps": self.eps_value,
                "step_size": self.step_value,
                "steps": self.steps,
                "norm": self.norm,
                "restarts": self.restarts,
                "bn_mode": self.bn_mode,
            },
        )


@dataclass(frozen=True)
class RuntimeConfig:
    """A suite's `[runtime]` table: the CUDA fast path (ignored on a CPU). Not part of any run's
    protocol: it changes how fast a run goes, and config.json's runtime section records it."""

    amp: bool = True  # bf16 autocast for training and attacks
    channels_last: bool = True
    compile: bool = False  # torch.compile the forward passes


RUNTIME_KEYS = ("amp", "channels_last", "compile")


@dataclass(frozen=True)
class Protocol:
    """Everything that determines a run's numbers. Defaults are the paper's (PROTOCOL.md)."""

    data: str = "cifar10"
    model: str = "preact_resnet50v2"
    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    # Fractions of `epochs` where lr is multiplied by lr_gamma: the paper's 30 and 50 of 100.
    lr_milestones: tuple[float, ...] = (0.3, 0.5)
    lr_gamma: float = 0.1
    seed: int = 0
    val_fraction: float = 0.1
    train_subset: int | None = None
    val_subset: int | None = None
    # Validation RA is measured on the first `val_ra_subset` validation images each epoch.
    val_ra_subset: int | None = 1000
    # Test images for evaluation: the first eval_n in the official order; unset = all.
    eval_n: int | None = None
    eval_batch_size: int = 500
    train_attack: AttackConfig = field(default_factory=AttackConfig)
    val_attack: AttackConfig = field(default_factory=lambda: AttackConfig(steps=20))
    # Hendrycks et al. (2019), the one-shot baseline of Figure 3: a rotation head trained with
    # the classifier, loss CE(class) + auxiliary_weight * CE(rotation), attacked jointly.
    auxiliary: str | None = None
    auxiliary_weight: float = 0.5
    # Under torchrun, BatchNorm normalises over the global batch (all ranks), as one process
    # does; false keeps per-rank statistics (cheaper, but the numbers depend on the rank count).
    sync_bn: bool = True

    def __post_init__(self) -> None:
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        for name in ("train_subset", "val_subset", "val_ra_subset", "eval_n"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError("need lr > 0, weight_decay >= 0 and 0 <= momentum < 1")
        if self.auxiliary not in AUXILIARY_TASKS:
            raise ConfigError(
                f"auxiliary {self.auxiliary!r}: the only auxiliary task is 'rotation'"
            )
        if self.auxiliary_weight < 0:
            raise ConfigError(f"auxiliary_weight must be >= 0, got {self.auxiliary_weight}")
        if any(not 0 < m <= 1 for m in self.lr_milestones):
            raise ConfigError(f"lr_milestones are fractions in (0, 1]: {self.lr_milestones}")

    def milestone_epochs(self) -> list[int]:
        """Milestones scaled to this run's epoch count (30, 50 of 100 -> 6, 10 of 20)."""
        return sorted({max(1, round(m * self.epochs)) for m in self.lr_milestones})


@dataclass(frozen=True)
class PretrainProtocol:
    """Self-supervised pretraining (P2 standard, P3 adversarial, PS random smoothing) of the
    trunk on a pretext task or on an ensemble of them (paper Sec. 3.3, Table 5).

    Cosine learning rate from lr_max to lr_min (unset: the task's paper values, 0.1 -> 1e-6 for
    Rotation and Jigsaw, 0.025 -> 1e-6 for Selfie, 0.001 -> 1e-8 for the ensemble). The paper
    does not state the pretraining length; suites set `epochs`.

    Ensemble keys (task = "ensemble"): `ensemble_tasks` share one trunk; `diversity` is lambda
    of eq. (3) (0: AP+SE, the plain average; the authors' AP+DPE used 0.1); `diversity_ridge`
    is the epsilon * I inside the log-determinant that keeps it finite for parallel gradients.
    Smoothing key (mode = "smooth", Table 8): `smoothing_sigma`, the std of the Gaussian noise
    on [0, 1] inputs (Cohen et al. 2019 trained CIFAR-10 models with 0.12 to 1.0).
    """

    model: str | None = None  # unset: the suite protocol's model (the trunk must transfer)
    data: str | None = None  # unset: the fine-tuning training split (validation never seen)
    data_dir: str | None = None  # a separate data root / image folder for `data`
    val_fraction: float = 0.1  # the same split as fine-tuning when data and seed are the same
    train_subset: int | None = None  # first n of the (shuffled) pretraining images: nested sizes
    val_subset: int | None = 1000  # pretext accuracy on this many validation images per epoch
    epochs: int = 100
    batch_size: int = 256
    lr_max: float | None = None
    lr_min: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int | None = None  # unset: the suite protocol's seed
    attack: AttackConfig = field(default_factory=AttackConfig)  # P3's PGD on the pretext loss
    # Constructor options per task, e.g. [pretrain_protocol.task_options.selfie] num_layers = 2
    task_options: dict[str, Any] = field(default_factory=dict)
    ensemble_tasks: tuple[str, ...] = ("rotation", "jigsaw", "selfie")
    diversity: float = 0.0
    diversity_ridge: float = 1e-5
    smoothing_sigma: float = 0.25

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_subset", "val_subset"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        for name in ("lr_max", "lr_min"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError("need weight_decay >= 0 and 0 <= momentum < 1")
        for task, options in self.task_options.items():
            if not isinstance(options, dict):
                raise ConfigError(f"task_options.{task} must be a table of constructor options")
        self._check_ensemble()
        if not self.smoothing_sigma > 0:
            raise ConfigError(f"smoothing_sigma must be > 0, got {self.smoothing_sigma}")

    def _check_ensemble(self) -> None:
        from robench.pretext import PRETEXTS  # late import: tasks import models, not config

        unknown = [t for t in self.ensemble_tasks if t not in PRETEXTS]
        if unknown:
            raise ConfigError(
                f"ensemble_tasks: unknown pretext task {unknown[0]!r} "
                f"(valid: {', '.join(PRETEXTS.names())})"
            )
        if len(set(self.ensemble_tasks)) != len(self.ensemble_tasks):
            raise ConfigError(f"ensemble_tasks: a task is listed twice: {self.ensemble_tasks}")
        if len(self.ensemble_tasks) < 2:
            raise ConfigError(
                f"ensemble_tasks: an ensemble needs at least 2 tasks, got {self.ensemble_tasks}"
            )
        if not self.diversity >= 0:
            raise ConfigError(f"diversity (lambda) must be >= 0, got {self.diversity}")
        if not self.diversity_ridge > 0:
            raise ConfigError(f"diversity_ridge must be > 0, got {self.diversity_ridge}")
