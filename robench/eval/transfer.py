"""Transferability of adversarial examples between runs: the paper's Table 4 and Figure 5.

Each run's PGD-20 examples are crafted exactly as `robench eval` crafts them (same seed,
batching and random stream, via `correct_flags(..., keep_adversarial=True)`), so the diagonal
of the attack-success-rate matrix is 1 - RA of that evaluation, image for image. Crafting is
the expensive part (20 gradient steps per image), so the examples are cached in the run
directory, keyed by everything that determines them, and reused by later analyses.

ASR(source -> target) uses the same "robust" definition as RA: an image counts as resisted
only if the target classifies it correctly both clean and on the source's example.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from torch import nn

from robench.atomic import atomic_write
from robench.attacks import model_mode
from robench.attacks.factory import pgd_from_config
from robench.data import ArrayDataset, DataSplits, make_splits
from robench.errors import CheckpointError, RobenchError
from robench.eval.accuracy import correct_flags
from robench.eval.suites import EvalSuite, get_eval_suite
from robench.progress import make_progress
from robench.runtime import Runtime
from robench.train.checkpoint import (
    checkpoint_paths,
    load_checkpoint,
    load_model_checkpoint,
    save_checkpoint,
)
from robench.train.run_dir import RunDir, open_run_dir
from robench.train.transfer import file_sha256

CHECKPOINT = "best_ta"  # the paper's model selection, as in `robench eval`
CACHE_FOLDER = "transfer"
CACHE_KIND = "robench-transfer-examples-v1"
OVERLAP_COLUMNS = ("source", "target_a", "target_b", "only_a", "only_b", "both", "neither", "n")


@dataclass(frozen=True)
class Crafted:
    """One run's attack on the first n test images: examples plus its own per-image flags."""

    examples: torch.Tensor  # float32 (n, C, H, W), CPU
    labels: torch.Tensor  # int64 (n,)
    clean: torch.Tensor  # bool (n,): the run classifies the clean image correctly
    robust: torch.Tensor  # bool (n,): ... and its own adversarial example too


@dataclass(frozen=True)
class TransferResult:
    """ASR matrix (rows: evaluated model, columns: source model) and the pairwise overlaps."""

    names: list[str]
    asr: pd.DataFrame
    overlap: pd.DataFrame
    suite: str
    n: int
    seed: int
    dataset: str


@dataclass(frozen=True)
class _Run:
    rd: RunDir
    config: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.config["run"]["name"])

    @property
    def protocol(self) -> dict[str, Any]:
        return self.config["run"]["protocol"]

    @property
    def content_hash(self) -> str:
        return str(self.config["data"]["content_hash"])


def _open(run_dir: str | Path) -> _Run:
    rd = open_run_dir(run_dir)
    return _Run(rd, rd.read_config())


def _load_test(
    run: _Run, data_dir: str | Path | None, n: int | None, console: Console | None
) -> tuple[ArrayDataset, DataSplits]:
    protocol = run.protocol
    splits = make_splits(
        protocol["data"], data_dir, val_fraction=protocol["val_fraction"], seed=protocol["seed"]
    )
    if splits.content_hash != run.content_hash and console is not None:
        console.print(
            f"[yellow]warning:[/yellow] {run.name} was trained on data with another content "
            f"hash ({run.config['data']['dataset']}); attacking {splits.dataset}"
        )
    n = n if n is not None else protocol.get("eval_n")
    return splits.test.first(n), splits


def cache_stem(run_dir: str | Path, suite_name: str, n: int, seed: int) -> Path:
    """`<run>/transfer/<suite>-n<N>-seed<S>` (`.safetensors` and `.json` are added)."""
    return Path(run_dir) / CACHE_FOLDER / f"{suite_name}-n{n}-seed{seed}"


def _cache_protocol(
    run: _Run,
    suite: EvalSuite,
    splits: DataSplits,
    n: int,
    seed: int,
    batch_size: int,
    runtime: Runtime,
) -> dict[str, Any]:
    """Everything the crafted examples depend on; a cache with another protocol is stale."""
    weights = checkpoint_paths(run.rd.checkpoint(CHECKPOINT))[0]
    if not weights.is_file():
        raise CheckpointError(f"checkpoint {weights} does not exist")
    protocol = {
        "suite": suite.name,
        "attack": dataclasses.asdict(suite.attack),
        "n": n,
        "seed": seed,
        "batch_size": batch_size,
        "dataset": splits.dataset,
        "content_hash": splits.content_hash,
        "checkpoint": {"kind": CHECKPOINT, "sha256": file_sha256(weights)},
        "device": runtime.describe(),
        "amp": None if runtime.amp_dtype is None else str(runtime.amp_dtype),
    }
    return json.loads(json.dumps(protocol))  # as it reads back from the JSON sidecar


def _read_cache(stem: Path, protocol: dict[str, Any], labels: torch.Tensor) -> Crafted | None:
    """The cached examples if they were made under exactly `protocol`, else None."""
    if not checkpoint_paths(stem)[0].is_file():
        return None
    try:
        tensors, meta = load_checkpoint(stem)
    except CheckpointError:
        return None  # unreadable or half-written: craft again and overwrite it
    if meta.get("kind") != CACHE_KIND or meta.get("protocol") != protocol:
        return None
    keys = ("examples", "labels", "clean", "robust")
    if any(k not in tensors for k in keys) or not torch.equal(tensors["labels"], labels):
        return None
    n = len(labels)
    if any(tensors[k].shape[0] != n for k in keys):
        return None
    return Crafted(*(tensors[k] for k in keys))


def _craft(
    run: _Run,
    suite: EvalSuite,
    test: ArrayDataset,
    splits: DataSplits,
    *,
    model: Callable[[], nn.Module],
    runtime: Runtime,
    seed: int,
    batch_size: int | None,
    console: Console | None,
) -> Crafted:
    """Load the cached attack on `run`, or run it (as `robench eval` does) and cache it."""
    n = len(test)
    bs = int(batch_size if batch_size is not None else run.protocol["eval_batch_size"])
    protocol = _cache_protocol(run, suite, splits, n, seed, bs, runtime)
    stem = cache_stem(run.rd.path, suite.name, n, seed)
    labels = torch.from_numpy(test.labels)
    cached = _read_cache(stem, protocol, labels)
    if cached is not None:
        return cached
    attack = pgd_from_config(suite.attack, runtime)
    with make_progress(console or Console(quiet=True)) as progress:
        task = progress.add_task(f"{run.name} {suite.name}", total=n, rate=0.0, info="transfer")

        def advance(batch: int) -> None:
            progress.advance(task, batch)
            elapsed = max(progress.tasks[task].elapsed or 1e-9, 1e-9)
            progress.update(task, rate=progress.tasks[task].completed / elapsed)

        flags = correct_flags(
            model(), test, runtime, bs, attack, seed=seed, on_batch=advance, keep_adversarial=True
        )
    assert flags.robust is not None and flags.adversarial is not None
    crafted = Crafted(flags.adversarial, labels, flags.clean, flags.robust)
    tensors = {
        "examples": crafted.examples,
        "labels": crafted.labels,
        "clean": crafted.clean,
        "robust": crafted.robust,
    }
    save_checkpoint(stem, tensors, {"kind": CACHE_KIND, "run": run.name, "protocol": protocol})
    return crafted


def _load_model(run: _Run, runtime: Runtime) -> nn.Module:
    model, _ = load_model_checkpoint(run.rd.checkpoint(CHECKPOINT))
    return runtime.prepare(model)


def craft_or_load(
    run_dir: str | Path,
    suite_name: str = "pgd20",
    n: int | None = None,
    runtime: Runtime | None = None,
    data_dir: str | Path | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    console: Console | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(examples, labels, robust flags) of `suite_name`'s attack on the run's best-TA model.

    n = None uses the run's protocol eval_n (all test images if unset); the batch size
    defaults to the protocol's eval_batch_size, which is what makes the examples identical
    to those `robench eval` scores.
    """
    runtime = runtime or Runtime.select("cpu")
    run = _open(run_dir)
    suite = get_eval_suite(suite_name)
    test, splits = _load_test(run, data_dir, n, console)
    crafted = _craft(
        run,
        suite,
        test,
        splits,
        model=lambda: _load_model(run, runtime),
        runtime=runtime,
        seed=seed,
        batch_size=batch_size,
        console=console,
    )
    return crafted.examples, crafted.labels, crafted.robust


def _predict(
    model: nn.Module, examples: torch.Tensor, runtime: Runtime, batch_size: int
) -> torch.Tensor:
    """Predicted classes (CPU int64) of a batched eval-mode forward over `examples`."""
    out = []
    with model_mode(model, train=False), torch.no_grad(), runtime.autocast():
        for start in range(0, len(examples), batch_size):
            x = examples[start : start + batch_size].to(runtime.device)
            if runtime.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(model(x).argmax(1).cpu())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def _check_runs(runs: list[_Run]) -> None:
    if len(runs) < 2:
        raise RobenchError(f"a transfer analysis needs at least two runs, got {len(runs)}")
    names = [r.name for r in runs]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise RobenchError(f"run {duplicate!r} is given twice; pass each run directory once")
    first = runs[0]
    for run in runs[1:]:
        if run.content_hash != first.content_hash:
            raise RobenchError(
                f"runs {first.name} and {run.name} were trained on different data sets "
                f"({first.config['data']['dataset']} {first.content_hash[:12]} vs "
                f"{run.config['data']['dataset']} {run.content_hash[:12]}); transfer needs one "
                "shared test set"
            )


def _shared_n(runs: list[_Run], n: int | None) -> int | None:
    if n is not None:
        return n
    eval_ns = {r.protocol.get("eval_n") for r in runs}
    if len(eval_ns) > 1:
        shown = ", ".join(f"{r.name}={r.protocol.get('eval_n')}" for r in runs)
        raise RobenchError(
            f"the runs evaluate different numbers of test images ({shown}); pass n explicitly"
        )
    return eval_ns.pop()


def transfer_matrix(
    run_dirs: Sequence[str | Path],
    suite_name: str = "pgd20",
    n: int | None = None,
    *,
    runtime: Runtime,
    data_dir: str | Path | None = None,
    seed: int = 0,
    console: Console | None = None,
) -> TransferResult:
    """Attack every run, evaluate every run on every other run's examples (same n images)."""
    runs = [_open(p) for p in run_dirs]
    _check_runs(runs)
    suite = get_eval_suite(suite_name)
    test, splits = _load_test(runs[0], data_dir, _shared_n(runs, n), console)
    models = [_load_model(r, runtime) for r in runs]
    crafted = [
        _craft(
            run,
            suite,
            test,
            splits,
            model=lambda m=model: m,
            runtime=runtime,
            seed=seed,
            batch_size=None,
            console=console,
        )
        for run, model in zip(runs, models, strict=True)
    ]
    names = [r.name for r in runs]
    # robust[s][t]: target t resists source s's example (and is right on the clean image)
    robust: list[list[torch.Tensor]] = []
    for s, source in enumerate(crafted):
        row = []
        for t, (run, model) in enumerate(zip(runs, models, strict=True)):
            if s == t:
                row.append(source.robust)  # the very flags `robench eval` counts as RA
                continue
            bs = int(run.protocol["eval_batch_size"])
            pred = _predict(model, source.examples, runtime, bs)
            row.append(crafted[t].clean & (pred == source.labels))
        robust.append(row)
    size = len(test)
    return TransferResult(
        names=names,
        asr=_asr_frame(names, robust, size),
        overlap=_overlap_frame(names, robust, size),
        suite=suite.name,
        n=size,
        seed=seed,
        dataset=splits.dataset,
    )


def _fraction(count: torch.Tensor | int, n: int) -> float:
    return int(count) / n if n else float("nan")


def _asr_frame(names: list[str], robust: list[list[torch.Tensor]], n: int) -> pd.DataFrame:
    values = [
        [_fraction(n - int(robust[s][t].sum()), n) for s in range(len(names))]
        for t in range(len(names))
    ]
    frame = pd.DataFrame(values, index=names, columns=names)
    frame.index.name = "evaluated"
    frame.columns.name = "source"
    return frame


def _overlap_frame(names: list[str], robust: list[list[torch.Tensor]], n: int) -> pd.DataFrame:
    """Per source and unordered target pair: which of the two its examples fool."""
    rows = []
    for s, source in enumerate(names):
        for a, b in itertools.combinations(range(len(names)), 2):
            fools_a, fools_b = ~robust[s][a], ~robust[s][b]
            rows.append(
                {
                    "source": source,
                    "target_a": names[a],
                    "target_b": names[b],
                    "only_a": _fraction((fools_a & ~fools_b).sum(), n),
                    "only_b": _fraction((~fools_a & fools_b).sum(), n),
                    "both": _fraction((fools_a & fools_b).sum(), n),
                    "neither": _fraction((~fools_a & ~fools_b).sum(), n),
                    "n": n,
                }
            )
    return pd.DataFrame(rows, columns=list(OVERLAP_COLUMNS))


def write_transfer(result: TransferResult, out_dir: str | Path) -> list[Path]:
    """transfer_asr.csv (fractions; index column 'evaluated') and transfer_overlap.csv."""
    out = Path(out_dir)
    asr_path, overlap_path = out / "transfer_asr.csv", out / "transfer_overlap.csv"
    asr = result.asr.copy()
    asr.columns.name = None
    atomic_write(asr_path, lambda tmp: asr.to_csv(tmp, index_label="evaluated"))
    atomic_write(overlap_path, lambda tmp: result.overlap.to_csv(tmp, index=False))
    return [asr_path, overlap_path]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def asr_table(result: TransferResult) -> Table:
    """Table 4: rows are the evaluated models, columns the models the examples came from."""
    table = Table(
        title=(
            f"Transfer attack success rate ({result.suite}, n={result.n}, "
            f"{escape(result.dataset)}); "
            "diagonal = 1 - RA"
        )
    )
    table.add_column("evaluated \\ crafted on", style="bold")
    for name in result.names:
        table.add_column(name, justify="right")
    for target in result.names:
        cells = [
            f"[bold]{_pct(result.asr.loc[target, s])}[/bold]"
            if s == target
            else _pct(result.asr.loc[target, s])
            for s in result.names
        ]
        table.add_row(target, *cells)
    return table


def overlap_table(result: TransferResult) -> Table:
    """Figure 5 as numbers: of each source's examples, which fool target a, b, both, neither."""
    table = Table(title=f"Overlap of transferred examples ({result.suite}, n={result.n})")
    for column in ("source", "target a", "target b"):
        table.add_column(column, overflow="fold")
    for column in ("only a", "only b", "both", "neither"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in result.overlap.itertuples(index=False):
        table.add_row(
            row.source,
            row.target_a,
            row.target_b,
            *(_pct(v) for v in (row.only_a, row.only_b, row.both, row.neither)),
        )
    return table
