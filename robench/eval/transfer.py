"""Transferability of adversarial examples between runs: the paper's Table 4 and Figure 5.

Each run's PGD-20 examples are the very examples its `robench eval` scored: the evaluation of
the suite's transferable attack keeps them beside its flags (`keep_examples`), and this
analysis asks the same evaluator for the same evaluation, so a run already evaluated is not
attacked again, and the diagonal of the attack-success-rate matrix is 1 - RA of that
evaluation, image for image. A run not yet evaluated (or evaluated without keeping them) is
attacked once, through the same path, and its examples kept for next time.

ASR(source -> target) uses the same "robust" definition as RA: an image counts as resisted
only if the target classifies it correctly both clean and on the source's example.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from robench.atomic import atomic_write
from robench.data.batches import TensorBatches
from robench.distributed import DistContext
from robench.errors import ConfigError, RobenchError
from robench.eval.evaluator import Evaluator
from robench.eval.suites import EvalOptions, get_eval_suite
from robench.eval.targets import EvalTarget, run_target
from robench.flags import Flags, compute_flags
from robench.runs.lock import folder_lock
from robench.runtime import Runtime
from robench.stats.intervals import estimate, interval_from_percent

CHECKPOINT = "best_ta"  # the paper's model selection, as in `robench eval`
OVERLAP_COLUMNS = ("source", "target_a", "target_b", "only_a", "only_b", "both", "neither", "n")


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


def source_flags(evaluator: Evaluator, suite_name: str) -> Flags:
    """The run's flags under the suite's transferable attack, with its examples."""
    evaluation = get_eval_suite(suite_name).transferable(evaluator.options)
    if evaluation is None:
        raise ConfigError(f"--attack {suite_name}: transfer analysis needs a PGD suite (pgd20)")
    flags = evaluator.flags(evaluation, keep_examples=True)
    assert flags.robust is not None and flags.examples is not None
    return flags


def _check_runs(targets: list[EvalTarget]) -> None:
    if len(targets) < 2:
        raise RobenchError(f"a transfer analysis needs at least two runs, got {len(targets)}")
    names = [t.name for t in targets]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise RobenchError(f"run {duplicate!r} is given twice; pass each run directory once")
    first = targets[0]
    for target in targets[1:]:
        a, b = first.record, target.record
        assert a is not None and b is not None
        if a.data.content_hash != b.data.content_hash:
            raise RobenchError(
                f"runs {first.name} and {target.name} were trained on different data sets "
                f"({a.data.dataset} {a.data.content_hash[:12]} vs "
                f"{b.data.dataset} {b.data.content_hash[:12]}); transfer needs one "
                "shared test set"
            )


def _shared_n(run_dirs: Sequence[str | Path], n: int | None) -> int | None:
    if n is not None:
        return n
    from robench.runs import open_run_dir

    eval_ns = {str(p): open_run_dir(p).read_record().run.protocol.eval_n for p in run_dirs}
    if len(set(eval_ns.values())) > 1:
        shown = ", ".join(f"{Path(k).name}={v}" for k, v in eval_ns.items())
        raise RobenchError(
            f"the runs evaluate different numbers of test images ({shown}); pass n explicitly"
        )
    return next(iter(eval_ns.values()), None)


def transfer_matrix(
    run_dirs: Sequence[str | Path],
    suite_name: str = "pgd20",
    n: int | None = None,
    *,
    runtime: Runtime,
    data_dir: str | Path | None = None,
    seed: int = 0,
    console: Console | None = None,
    precision: str = "fp32",
) -> TransferResult:
    """Attack every run (or reuse its evaluation's examples), score every run on every other
    run's examples (the same n images)."""
    console = console or Console(quiet=True)
    shared = _shared_n(run_dirs, n)
    targets = [run_target(p, checkpoint=CHECKPOINT, data_dir=data_dir, n=shared) for p in run_dirs]
    _check_runs(targets)
    for target in targets:
        for note in target.notes:
            console.print(f"[yellow]warning:[/yellow] {escape(note)}")
    options = EvalOptions(seed=seed, precision=precision)
    # One process: under torchrun the analysis runs on rank 0 alone.
    evaluators = [Evaluator(t, runtime, console, options, DistContext()) for t in targets]
    with contextlib.ExitStack() as locks:
        for target in targets:
            locks.enter_context(folder_lock(target.flag_dir, "the flag folder"))
        crafted = [source_flags(e, suite_name) for e in evaluators]
    labels = torch.from_numpy(targets[0].test.labels)
    names = [t.name for t in targets]
    # robust[s][t]: target t resists source s's example (and is right on the clean image)
    robust: list[list[np.ndarray]] = []
    for s, source in enumerate(crafted):
        row = []
        for t, evaluator in enumerate(evaluators):
            if s == t:
                assert source.robust is not None
                row.append(source.robust)  # the very flags `robench eval` counts as RA
                continue
            assert source.examples is not None
            batches = TensorBatches(
                source.examples,
                labels,
                evaluator.batch_size,
                device=runtime.device,
                channels_last=runtime.channels_last,
            )
            fooled = compute_flags(
                evaluator.model,
                batches,
                runtime=evaluator.runtime,
                batch_size=evaluator.batch_size,
            )
            row.append(crafted[t].clean & fooled.clean)
        robust.append(row)
    size = len(targets[0].test)
    return TransferResult(
        names=names,
        asr=_asr_frame(names, robust, size),
        overlap=_overlap_frame(names, robust, size),
        suite=suite_name,
        n=size,
        seed=seed,
        dataset=str(targets[0].data_info["dataset"]),
    )


def _fraction(count: np.integer | int, n: int) -> float:
    return int(count) / n if n else float("nan")


def _asr_frame(names: list[str], robust: list[list[np.ndarray]], n: int) -> pd.DataFrame:
    values = [
        [_fraction(n - int(robust[s][t].sum()), n) for s in range(len(names))]
        for t in range(len(names))
    ]
    frame = pd.DataFrame(values, index=names, columns=names)
    frame.index.name = "evaluated"
    frame.columns.name = "source"
    return frame


def _overlap_frame(names: list[str], robust: list[list[np.ndarray]], n: int) -> pd.DataFrame:
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
    long_path = out / "transfer_asr_long.csv"
    asr = result.asr.copy()
    asr.columns.name = None
    atomic_write(asr_path, lambda tmp: asr.to_csv(tmp, index_label="evaluated"))
    atomic_write(overlap_path, lambda tmp: result.overlap.to_csv(tmp, index=False))
    long = asr_long(result)
    atomic_write(long_path, lambda tmp: long.to_csv(tmp, index=False))
    return [asr_path, overlap_path, long_path]


ASR_LONG_COLUMNS = ("source", "evaluated", "asr", "asr_lo", "asr_hi", "n", "seed", "dataset")


def asr_long(result: TransferResult) -> pd.DataFrame:
    """The ASR matrix one cell per row, in %, with its 95% Wilson interval (the share of the
    n images the source's examples fool on the evaluated model)."""
    rows = []
    for target in result.names:
        for source in result.names:
            asr = 100 * float(result.asr.loc[target, source])
            lo, hi = interval_from_percent(asr, result.n)
            rows.append(
                {
                    "source": source,
                    "evaluated": target,
                    "asr": asr,
                    "asr_lo": lo,
                    "asr_hi": hi,
                    "n": result.n,
                    "seed": result.seed,
                    "dataset": result.dataset,
                }
            )
    return pd.DataFrame(rows, columns=list(ASR_LONG_COLUMNS))


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _pct_interval(value: float, n: int) -> str:
    """An ASR cell with its 95% interval, e.g. `62.5 ± 3.0` (in %)."""
    lo, hi = interval_from_percent(100 * value, n)
    return estimate(100 * value, lo, hi)


def asr_table(result: TransferResult) -> Table:
    """Table 4: rows are the evaluated models, columns the models the examples came from."""
    table = Table(
        title=(
            f"Transfer attack success rate ({result.suite}, n={result.n}, "
            f"{escape(result.dataset)}), %, 95% Wilson intervals; "
            "diagonal = 1 - RA"
        )
    )
    table.add_column("evaluated \\ crafted on", style="bold")
    for name in result.names:
        table.add_column(escape(name), justify="right")
    for target in result.names:
        cells = [
            f"[bold]{_pct_interval(result.asr.loc[target, s], result.n)}[/bold]"
            if s == target
            else _pct_interval(result.asr.loc[target, s], result.n)
            for s in result.names
        ]
        table.add_row(escape(target), *cells)
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
            escape(row.source),
            escape(row.target_a),
            escape(row.target_b),
            *(_pct(v) for v in (row.only_a, row.only_b, row.both, row.neither)),
        )
    return table
