"""robench from Python: evaluate any model, attack a batch, load a trained run.

The same path as the command line, without files in between: a model built in a notebook
goes through the same sanity checks, resumable flags, intervals and boards as `robench eval`
(a call -> a target -> the Evaluator -> rows). Errors raise the `RobenchError` subclasses the
CLI prints as one line.

    import robench
    result = robench.evaluate(model, suite="pgd20", n=1000)   # any nn.Module, [0, 1] -> logits
    result.rows[["ta", "ta_lo", "ta_hi", "ra", "ra_lo", "ra_hi"]]
    x_adv = robench.attack(model, x, y, "pgd", eps=8 / 255, steps=20)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from torch import nn

from robench.errors import ConfigError, RobenchError
from robench.flags import Flags
from robench.stats.intervals import Interval, interval_from_flags

ZOO_PREFIX = "robustbench:"
STATE_FOLDER = ".eval-state"  # as `robench eval --leaderboard-dir` keeps it


@dataclass(frozen=True)
class EvalResult:
    """What `evaluate` measured: the rows of each board, and the flags they came from."""

    suite: str
    boards: dict[str, pd.DataFrame]  # board name -> its rows (this model's), every column
    flags: dict[str, Flags] = field(default_factory=dict)  # evaluation name -> per-image flags
    store: Path | None = None  # where the rows and flags were kept (None: nowhere)

    @property
    def rows(self) -> pd.DataFrame:
        """The main board's rows (pgd20's for suite="pgd20"; every suite's first for "all")."""
        return next(iter(self.boards.values()))

    def interval(self, evaluation: str = "pgd") -> Interval:
        """The accuracy (robust if attacked, else clean) of one evaluation with its 95%
        Wilson interval, from its flags: `result.interval("pgd")`, `result.interval("clean")`."""
        if evaluation not in self.flags:
            raise ConfigError(
                f"no evaluation {evaluation!r} in this result; it has {', '.join(self.flags)}"
            )
        return interval_from_flags(self.flags[evaluation].measured)


def evaluate(
    model: nn.Module,
    suite: str = "pgd20",
    *,
    n: int | None = 1000,
    data: str = "cifar10",
    data_dir: str | Path | None = None,
    device: str = "auto",
    store: str | Path | None = None,
    name: str = "model",
    seed: int = 0,
    precision: str = "fp32",
    batch_size: int | None = None,
    cross_check_images: int | None = None,
    attack: str | None = None,
    attack_options: dict[str, Any] | None = None,
    verbose: bool = False,
    **overrides: Any,
) -> EvalResult:
    """Evaluate an in-memory model that maps [0, 1] images to logits under an eval suite.

    `store=DIR` keeps the flags resumable in DIR/.eval-state and upserts the rows into the
    boards in DIR (as `robench eval --leaderboard-dir DIR`); without it nothing is written
    that outlives the call. `overrides` are the suite's attack settings: eps, steps,
    step_size (eps as a float, 8 / 255, or a fraction string, "8/255"), and norm ("l2":
    the L2 threat model, eps 0.5 unless given). With
    suite="torchattacks", `attack` names a torchattacks class and `attack_options` its
    options: `evaluate(model, "torchattacks", attack="CW", attack_options={"steps": 50})`.
    """
    from robench.config import CrossCheckConfig
    from robench.eval.evaluator import Evaluator
    from robench.eval.own_targets import memory_target
    from robench.eval.suites import EvalOptions, Overrides, expand_suites
    from robench.eval.suites.base import OVERRIDES
    from robench.leaderboard.board_set import BoardSet
    from robench.runs.lock import folder_lock
    from robench.session import Session

    expand_suites(suite)  # an unknown suite fails before any data loads
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}: use {', '.join(OVERRIDES)}")
    options = EvalOptions(
        seed=seed,
        overrides=Overrides(
            **{k: _fraction(v) if k in ("eps", "step_size") else v for k, v in overrides.items()}
        ),
        batch_size=batch_size,
        precision=precision,
        bridge=None if attack is None else (attack, tuple(sorted((attack_options or {}).items()))),
        cross_check=CrossCheckConfig(
            CrossCheckConfig.images if cross_check_images is None else cross_check_images
        ),
    )
    console = Console(stderr=True, quiet=not verbose)
    session = Session.start(
        device, console=console, data_dir=None if data_dir is None else str(data_dir)
    )
    with tempfile.TemporaryDirectory(prefix="robench-") as scratch:
        root = Path(store) if store is not None else Path(scratch)
        target = memory_target(
            model, name=name, data=data, data_dir=data_dir, n=n, state_root=root / STATE_FOLDER
        )
        evaluator = Evaluator(target, session.runtime, console, options)
        with folder_lock(target.flag_dir, "the flag folder"):  # another process on the store
            produced = evaluator.run(suite)
        flags = evaluator.flags_by_name()
    boards = {schema.name: pd.DataFrame(rows) for schema, rows in produced}
    if store is not None:
        kept = BoardSet(Path(store), warn=session.warn)
        for schema, rows in produced:
            kept.store(schema, rows)
    return EvalResult(suite, boards, flags, None if store is None else Path(store))


def attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    name: str = "pgd",
    *,
    seed: int = 0,
    **params: Any,
) -> torch.Tensor:
    """Adversarial examples of `x` (in [0, 1]) for labels `y` from any registered attack
    (`robench list attacks`), with its parameters: `attack(model, x, y, "pgd", eps=8/255,
    steps=20, step_size=2/255)`. The model is attacked in eval mode, on x's device."""
    from robench.attacks import build_attack, model_mode
    from robench.config import AttackSpec

    if not isinstance(model, nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or len(x) != len(y):
        raise ConfigError("x and y must be tensors of the same length (images in [0, 1], labels)")
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ConfigError("x must be in [0, 1]: normalisation belongs inside the model")
    built = build_attack(AttackSpec(name, params))
    generator = torch.Generator(device=x.device).manual_seed(seed)
    with model_mode(model, train=False):
        return built.perturb(model, x, y, generator)


def load(source: str | Path, checkpoint: str = "best_ta") -> nn.Module:
    """A ready model (eval mode, CPU): an exported folder (`robench export`), a Hub id
    (`hf-hub:ORG/NAME[@REV]`), a RobustBench zoo model (`robustbench:NAME`, or
    `robustbench:L2/NAME`; its checkpoint in robench's cache, downloaded where the network
    allows), or a trained run directory (its `checkpoint`). An export made with --trunk-only
    gives the trunk."""
    from robench.artifacts.hub import HUB_PREFIX, is_artifact, load_artifact, resolve
    from robench.runs import open_run_dir
    from robench.runs.checkpoint import load_model_checkpoint

    if str(source).startswith(ZOO_PREFIX):
        return _zoo_model(str(source)[len(ZOO_PREFIX) :])
    if str(source).startswith(HUB_PREFIX) or is_artifact(Path(source)):
        return load_artifact(resolve(source))
    if Path(source).is_dir() and not (Path(source) / "config.json").is_file():
        raise RobenchError(
            f"{source} is neither an exported robench model nor a run directory (no config.json)"
        )
    run = open_run_dir(Path(source))
    model, _ = load_model_checkpoint(run.checkpoint(checkpoint))
    return model.eval()


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """The HTML report of a folder of boards (a reproduction, or `evaluate(..., store=DIR)`'s
    DIR), drawn again from what is on disk, as `robench report DIR`; the page's path (default
    DIR/report.html). In a notebook: `IPython.display.IFrame(str(path), "100%", 800)`."""
    from robench.report.rebuild import rebuild_report

    page, _ = rebuild_report(Path(folder), Path(out) if out is not None else None)
    return page


def _zoo_model(text: str) -> nn.Module:
    from robench.data.cache import cache_root
    from robench.models.robustbench_zoo import load_zoo_model

    threat_model, _, name = text.rpartition("/")
    return load_zoo_model(name, threat_model or "Linf", cache_root() / "robustbench").model


def _fraction(value: Any) -> str:
    """An eps or step size as the text robench records: floats become their decimal form."""
    if isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
        return repr(float(value))
    if isinstance(value, str):
        return value
    raise RobenchError(f"an eps or step size must be a number or a fraction string, got {value!r}")
