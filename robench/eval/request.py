"""What `robench eval` was asked, as one typed, validated request (the CLI only fills it in).

The rules live here, not in the command line, so a Python caller gets the same checks and the
same one-line errors: which kind of target (run directories, an ensemble of them, your own
`FILE.py:FACTORY` model, or a RobustBench zoo model), which suite, which overrides, and what
each combination forbids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from robench.atomic import check_output_dir
from robench.columns import check_row_name
from robench.config import CrossCheckConfig
from robench.config.choices import CheckpointName, choices
from robench.epsilon import parse_eps
from robench.errors import ConfigError, RobenchError
from robench.eval.own_targets import external_target, robustbench_target
from robench.eval.suites import EvalOptions, Overrides, expand_suites
from robench.eval.targets import EvalTarget, ensemble_target, run_target
from robench.runtime import check_precision

STATE_FOLDER = ".eval-state"  # <leaderboard-dir>/.eval-state: flags of ensembles and models


@dataclass(frozen=True)
class EvalRequest:
    run_dirs: tuple[Path, ...] = ()
    suite: str = "pgd20"
    leaderboard_dir: Path = Path("leaderboards")
    n: int | None = None
    checkpoint: CheckpointName = "best_ta"
    seed: int = 0
    ensemble: bool = False
    name: str | None = None  # the row name of an ensemble or an external model
    model: str | None = None  # FILE.py:FACTORY
    weights: Path | None = None
    robustbench: str | None = None  # a RobustBench zoo model's name
    threat_model: str = "Linf"  # ... and its threat model (Linf or L2)
    robustbench_dir: Path | None = None  # where its checkpoint is (default: robench's cache)
    data: str = "cifar10"  # the data source of an external model
    eps: str | None = None
    eps_sweep: tuple[str, ...] = ()  # one evaluation per eps, on the same images
    steps: int | None = None
    step_size: str | None = None
    norm: str | None = None  # the threat model of the attack: linf or l2
    batch_size: int | None = None
    corruptions_dir: Path | None = None
    allow_randomized: bool = False
    allow_training_mode: bool = False
    allow_other_classes: bool = False
    cross_check_images: int = CrossCheckConfig.images
    cross_check_queries: int = CrossCheckConfig.queries
    data_dir: str | None = None
    precision: str = "fp32"
    attack: str | None = None  # --suite torchattacks: the torchattacks class
    attack_options: tuple[str, ...] = ()  # ... and its KEY=VALUE options

    def __post_init__(self) -> None:
        expand_suites(self.suite)  # an unknown suite fails before anything loads
        if self.checkpoint not in choices(CheckpointName):
            raise ConfigError(
                f"--checkpoint {self.checkpoint!r} must be one of "
                f"{', '.join(choices(CheckpointName))}"
            )
        if self.seed < 0:
            raise RobenchError(f"--seed must be >= 0, got {self.seed}")
        if self.name is not None:
            check_row_name(self.name, "--name")
        check_output_dir(self.leaderboard_dir, "--leaderboard-dir")
        if self.n is not None and self.n < 1:
            raise RobenchError(f"--n must be >= 1, got {self.n}")
        if self.batch_size is not None and self.batch_size < 1:
            raise RobenchError(f"--batch-size must be >= 1, got {self.batch_size}")
        if (self.model is None) != (self.weights is None):
            raise RobenchError("--model FILE.py:FACTORY and --weights FILE go together")
        kinds = [bool(self.run_dirs), self.model is not None, self.robustbench is not None]
        if sum(kinds) == 0:
            raise RobenchError(
                "give run directories to evaluate, --model and --weights, or --robustbench NAME"
            )
        if sum(kinds) > 1:
            raise RobenchError(
                "evaluate one kind of model: run directories, --model, or --robustbench"
            )
        if self.threat_model not in ("Linf", "L2"):
            raise RobenchError(f"--threat-model {self.threat_model!r} must be Linf or L2")
        if self.ensemble and len(self.run_dirs) < 2:
            raise RobenchError("--ensemble needs at least two run directories")
        if self.corruptions_dir is not None and not self.corruptions_dir.is_dir():
            raise RobenchError(f"--corruptions-dir {self.corruptions_dir} is not a directory")
        check_precision(self.precision)
        if (self.attack is not None or self.attack_options) and self.suite != "torchattacks":
            raise RobenchError("--attack and --attack-option go with --suite torchattacks")
        if self.suite == "torchattacks" and self.attack is None:
            raise RobenchError("--suite torchattacks needs --attack NAME (a torchattacks class)")
        self.options()  # the overrides' own checks
        if self.eps_sweep:
            self._check_sweep()

    def _check_sweep(self) -> None:
        if self.eps is not None:
            raise RobenchError("--eps-sweep replaces --eps: give one or the other")
        suites = expand_suites(self.suite)
        if len(suites) != 1 or "eps" not in suites[0].accepts:
            raise RobenchError(f"--eps-sweep: suite {self.suite} takes no eps (pgd20 does)")
        values = [parse_eps(v) for v in self.eps_sweep]
        if len(set(values)) != len(values):
            raise RobenchError(f"--eps-sweep gives an eps twice: {','.join(self.eps_sweep)}")
        self.sweep_options()  # each eps checked as --eps would be

    def sweep_options(self) -> list[EvalOptions]:
        """One set of options per eps of --eps-sweep (the options alone without one)."""
        base = self.options()
        if not self.eps_sweep:
            return [base]
        return [replace(base, overrides=replace(base.overrides, eps=eps)) for eps in self.eps_sweep]

    @property
    def state_root(self) -> Path:
        return self.leaderboard_dir / STATE_FOLDER

    def options(self) -> EvalOptions:
        bridge = None
        if self.attack is not None:
            bridge = (self.attack, parse_options(self.attack_options))
        return EvalOptions(
            seed=self.seed,
            overrides=Overrides(
                eps=self.eps, steps=self.steps, step_size=self.step_size, norm=self.norm
            ),
            corruptions_dir=self.corruptions_dir,
            allow_randomized=self.allow_randomized,
            allow_training_mode=self.allow_training_mode,
            batch_size=self.batch_size,
            cross_check=CrossCheckConfig(self.cross_check_images, self.cross_check_queries),
            precision=self.precision,
            bridge=bridge,
        )

    def targets(self) -> Iterator[EvalTarget]:
        """The targets, loaded one at a time (a run's model is not held after its rows)."""
        if self.robustbench is not None:
            yield robustbench_target(
                self.robustbench,
                self.threat_model,
                data=self.data,
                data_dir=self.data_dir,
                n=self.n,
                state_root=self.state_root,
                model_dir=self.robustbench_dir,
            )
        elif self.model is not None:
            assert self.weights is not None
            yield external_target(
                self.model,
                self.weights,
                data=self.data,
                data_dir=self.data_dir,
                n=self.n,
                name=self.name,
                state_root=self.state_root,
            )
        elif self.ensemble:
            yield ensemble_target(
                list(self.run_dirs),
                name=self.name,
                checkpoint=self.checkpoint,
                data_dir=self.data_dir,
                n=self.n,
                state_root=self.state_root,
                allow_other_classes=self.allow_other_classes,
            )
        else:
            for path in self.run_dirs:
                yield run_target(
                    path,
                    checkpoint=self.checkpoint,
                    data_dir=self.data_dir,
                    n=self.n,
                    allow_other_classes=self.allow_other_classes,
                )


def parse_options(texts: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    """KEY=VALUE options as (key, value) pairs: numbers (and fractions such as 8/255) become
    floats or ints, true/false booleans, anything else stays text."""
    pairs = []
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key.isidentifier():
            raise RobenchError(f"--attack-option {text!r} must look like KEY=VALUE, e.g. steps=50")
        pairs.append((key, _value(value)))
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise RobenchError(f"--attack-option gives a key twice: {', '.join(keys)}")
    return tuple(sorted(pairs))


def _value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if "/" in text:
        try:
            return parse_eps(text)
        except ConfigError:
            pass
    return text
