"""What several test modules share, so that no test module imports another.

suite_toml             TOML text of the tiny training suite most tests train (overridable)
run_cli                `robench ARGS` in this process: (exit code, stdout, stderr)
assert_one_line_error  how bad input must look at the command line: exit 2, one line
leaderboard_row        one valid pgd20 leaderboard row
stored_pgd_row         a pgd20 row whose RA comes from flags stored in a flag folder (paired tests)
smooth_images          natural-ish test images in [0.05, 0.95] (corruption tests)
quiet_session          a CPU Session that prints nothing (the stages' first argument)
train_env              the TrainEnv a quiet CPU session hands the training stage
array_target           an EvalTarget of any model on random (or given) uint8 images
launch_suite_toml      a pretraining and two fine-tunings, for the launcher tests
same_boards            assert two reproductions' boards hold the same numbers
REPO                   the repository root (robench/, leaderboards/, benchmarks/)

The root conftest's folder (tests/) is on sys.path under pytest's default "prepend" import
mode, so `from helpers import ...` works from every subfolder, like `synthetic`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

from robench.config import Suite
from robench.session import Session
from robench.train.lifecycle import TrainEnv

REPO = Path(__file__).resolve().parents[1]

# The tiny protocol that the CLI tests train; the other suites differ in a few values.
TINY_PROTOCOL: dict[str, Any] = {
    "data": "imagefolder",
    "model": "preact_tiny",
    "epochs": 1,
    "batch_size": 50,
    "val_ra_subset": 10,
    "eval_n": 40,
    "eval_batch_size": 40,
    "train_attack": {"steps": 1},
    "val_attack": {"steps": 1},
}
TINY_RUNS: dict[str, dict[str, Any]] = {"P1F3": {"finetune": "F3"}, "P1F4": {"finetune": "F4"}}


def suite_toml(
    *,
    runs: dict[str, dict[str, Any]] | None = None,
    pretrain_protocol: dict[str, Any] | None = None,
    pretraining: dict[str, dict[str, Any]] | None = None,
    **protocol: Any,
) -> str:
    """TOML text of a small valid suite: TINY_PROTOCOL with `protocol` keys replaced or added.

    A dict value is a sub-table (`train_attack={"steps": 2}` replaces [protocol.train_attack]
    whole). `runs` maps run names to their keys (default: P1F3 and P1F4 from scratch);
    `pretrain_protocol` and `pretraining` add those tables. Keys keep their order, one
    `key = value` line each, so `.replace()` on the text works as on a hand-written suite.
    """
    merged = {**TINY_PROTOCOL, **protocol}
    lines = _table("protocol", merged)
    if pretrain_protocol is not None:
        lines += _table("pretrain_protocol", pretrain_protocol)
    for name, table in (pretraining or {}).items():
        lines += _table(f"pretraining.{_key(name)}", table)
    for name, table in (TINY_RUNS if runs is None else runs).items():
        lines += _table(f"runs.{_key(name)}", table)
    return "\n" + "\n".join(lines) + "\n"


def _table(header: str, table: dict[str, Any]) -> list[str]:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    lines = [f"[{header}]"] if scalars or not table else []
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for key, sub in table.items():
        if isinstance(sub, dict):
            lines += _table(f"{header}.{_key(key)}", sub)
    return lines


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`robench ARGS` in this process: its exit code (None, a plain exit, is 0), out, err."""
    from robench.cli import main

    monkeypatch.setattr(sys, "argv", ["robench", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    code = info.value.code
    return (0 if code is None else code), out, err


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    """Bad input at the command line: exit code 2 and one line naming it, no traceback."""
    assert code == 2
    assert "Traceback" not in err
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err


def leaderboard_row(run: str = "a", ra: float = 40.0, n: int = 100) -> dict[str, Any]:
    """A valid pgd20 row (every column present) for run `run` with RA `ra` on `n` images."""
    from robench.leaderboard import PGD20

    row = dict.fromkeys(PGD20.names, "")
    row.update(
        run=run,
        suite="pgd20",
        pretext="none",
        scenario="P1F4",
        checkpoint="best_ta",
        ta=80.0,
        ra=ra,
        attack="pgd-linf",
        eps="8/255",
        eps_value=8 / 255,
        step_size="2/255",
        steps=20,
        restarts=1,
        n_eval=n,
        seed=0,
        dataset="CIFAR-10 (JPEG copy)",
        is_jpeg_copy=True,
        epochs_to_best=3,
        model_id=f"test:{run}",
    )
    return row


def stored_pgd_row(
    folder: Path, run: str, robust: Any, *, scenario: str = "P1F4", pretext: str = "none"
) -> dict[str, Any]:
    """A pgd20 row for `run` whose RA is that of the flags `robust` (bool, one per image),
    stored as robench stores them (clean flags all true) in `folder`/`run`, with pointers."""
    import numpy as np

    from robench.runs import FlagStore

    robust = np.asarray(robust, dtype=bool)
    n = len(robust)
    store = FlagStore(folder / run)
    names = {}
    for evaluation, measured in (("clean", np.ones(n, dtype=bool)), ("pgd", robust)):
        protocol = {"attack": evaluation, "model": run, "data": "d", "seed": 0, "amp": "None"}
        flag_file = store.file(evaluation, protocol, n)
        flag_file.save(np.ones(n, dtype=bool), measured)
        names[evaluation] = flag_file.path.name
    row = leaderboard_row(run, ra=float(robust.mean() * 100), n=n)
    row.update(
        ta=100.0,
        scenario=scenario,
        pretext=pretext,
        flag_dir=str(folder / run),
        flag_files=f"ta={names['clean']};ra={names['pgd']}",
    )
    return row


def smooth_images(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Natural-ish test images: smooth random colour fields with edges, in [0.05, 0.95]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False)
    x[:, :, 10:20, 8:24] = torch.rand(n, 3, 1, 1, generator=g)
    return (0.05 + 0.9 * x).contiguous()


def quiet_session(data_dir: str | Path | None = None, **options: Any) -> Session:
    """A CPU session with a console that prints nothing; `options` as for Session.start."""
    return Session.start("cpu", console=Console(quiet=True), data_dir=data_dir, **options)


def train_env(
    data_dir: str | Path | None = None, suite: Suite | None = None, **options: Any
) -> TrainEnv:
    """The training stage's environment of a quiet CPU session (suite: its provenance)."""
    return quiet_session(str(data_dir) if data_dir else None, **options).train_env(suite)


def array_target(
    model: torch.nn.Module,
    flag_dir: Path,
    n: int = 16,
    name: str = "m",
    images: Any = None,
    labels: Any = None,
) -> Any:
    """An EvalTarget of `model` on `images` (uint8 NHWC; default random 32x32) and `labels`."""
    import numpy as np

    from robench.data import ArrayDataset
    from robench.eval.targets import EvalTarget

    rng = np.random.default_rng(0)
    if images is None:
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, n)
    identity = dict.fromkeys(("pretext", "scenario", "model", "checkpoint"), "x")
    identity.update(run=name, epochs_to_best=None, train_suite="", train_suite_sha256="")
    return EvalTarget(
        name=name,
        model=model,
        test=ArrayDataset(images, labels, tuple(str(i) for i in range(10))),
        data_info={"dataset": "random", "is_jpeg_copy": False, "content_hash": "r"},
        identity={**identity, "run_dir": "", "model_id": f"test:{name}"},
        model_hash=name,
        flag_dir=flag_dir,
        batch_size=8,
    )


def launch_suite_toml(**runs: dict[str, Any]) -> str:
    """The launcher tests' suite: an adversarial rotation pretraining, P1F4 and rot-P3F4
    (plus `runs`), small enough that a job is seconds."""
    return suite_toml(
        epochs=2,
        batch_size=40,
        eval_n=40,
        pretrain_protocol={"epochs": 1, "batch_size": 40, "val_subset": 20, "attack": {"steps": 1}},
        runs={
            "P1F4": {"finetune": "F4"},
            "rot-P3F4": {"pretrain": "adv:rotation", "finetune": "F4"},
            **runs,
        },
    )


def same_boards(a: Path, b: Path, boards: tuple[str, ...] = ("pgd20", "table3")) -> None:
    """Two reproductions' boards (folders of CSVs) hold the same rows and numbers."""
    import pandas as pd

    for name in boards:
        left, right = (pd.read_csv(folder / f"{name}.csv") for folder in (a, b))
        key = [c for c in ("run", "pretext", "scenario") if c in left]
        left, right = (f.sort_values(key).reset_index(drop=True) for f in (left, right))
        numbers = [c for c in left.columns if c in ("ta", "ra", "worst_ra", "epochs_to_best")]
        assert list(left[key].itertuples()) == list(right[key].itertuples()), name
        pd.testing.assert_frame_equal(left[numbers], right[numbers], check_exact=True)
