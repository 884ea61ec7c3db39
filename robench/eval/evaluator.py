"""Evaluate one target under eval suites: sanity checks once, flags on demand, rows per board.

The evaluator is what a suite's `rows` talks to (the `Scorer` of suites/base.py): it turns an
`Evaluation` into per-example flags through the flags primitive (robench/flags.py), stored in
the target's flag folder as they go, so a killed `robench eval` reruns only what is missing
and produces exactly the numbers an uninterrupted one would. Each stored flag file is keyed by
everything that determines its flags (the model's weights, the test data, the evaluation,
seed, batch size, autocast dtype); within one evaluator a flag file is computed once, so the
clean flags every suite needs, or PGD-20 inside AutoAttack's suite, are shared.

Under torchrun every rank evaluates (the primitive shards batches across them) and only rank 0
writes; the rows come back on every rank, and only rank 0's are stored (workflow.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from rich.console import Console

import robench
from robench.attacks import build_attack
from robench.columns import SCHEMA_VERSION, BoardSchema
from robench.data import ArrayDataset, BatchIterator
from robench.distributed import DistContext, current
from robench.errors import DataError
from robench.eval.sanity import SanityReport, check_model
from robench.eval.suites import ALL, EvalOptions, Evaluation, Rows, expand_suites
from robench.eval.suites.base import complete_rows
from robench.eval.suites.corruptions import corruption_source
from robench.eval.targets import EvalTarget
from robench.flags import Flags, compute_flags
from robench.progress import make_progress
from robench.provenance import git_revision, now_iso
from robench.runs import FlagFile, FlagStore
from robench.runtime import Runtime

SANITY_BATCH = 64


class Evaluator:
    """Evaluates one target: sanity checks once, then any suite, flags stored as they go."""

    def __init__(
        self,
        target: EvalTarget,
        runtime: Runtime,
        console: Console,
        options: EvalOptions,
        dist: DistContext | None = None,
    ) -> None:
        self.target = target
        self.runtime = runtime.for_evaluation(options.precision)
        self.console = console
        self.options = options
        self.model = runtime.prepare(target.model)
        self.model.eval()
        self.dist = dist or current()
        self.store = FlagStore(target.flag_dir, writable=self.dist.is_main)
        self.batch_size = options.batch_size or target.batch_size
        self._sanity: SanityReport | None = None
        self._cache: dict[str, Flags] = {}
        self._files: dict[str, str] = {}  # evaluation name -> its flag file (this suite's)
        self._by_name: dict[str, Flags] = {}  # evaluation name -> its flags (every suite's)

    def sanity(self) -> SanityReport:
        if self._sanity is None:
            data = self.target.test.first(min(self.batch_size, SANITY_BATCH, len(self.target.test)))
            x, y = _first_batch(data, self.runtime)
            with self.runtime.autocast():
                self._sanity = check_model(
                    self.model,
                    x,
                    y,
                    num_classes=self.target.logits_width,
                    allow_randomized=self.options.allow_randomized,
                    allow_training_mode=self.options.allow_training_mode,
                )
        return self._sanity

    def run(self, suite_name: str) -> list[tuple[BoardSchema, list[dict[str, Any]]]]:
        """Rows per board of `suite_name`; under `all` each suite takes the overrides it accepts
        (and a single suite refuses the ones it does not)."""
        suites = expand_suites(suite_name)
        if suite_name != ALL:
            suites[0].check(self.options.overrides)
        self.sanity()
        out = []
        base = self.options
        try:
            for suite in suites:
                self.options = replace(base, overrides=base.overrides.only(suite.accepts))
                self._files = {}
                start = time.perf_counter()
                rows: Rows = suite.rows(self)
                seconds = max(time.perf_counter() - start, self._flag_seconds())
                for row in rows[suite.board.name]:
                    row["eval_seconds"] = seconds
                complete_rows(suite, rows, self._files, self.target.published)
                out += [(board, rows[board.name]) for board in suite.boards]
        finally:
            self.options = base
        return out

    # -- the Scorer's questions ---------------------------------------------------------------

    def flags(self, evaluation: Evaluation, *, keep_examples: bool = False) -> Flags:
        """Per-example flags of one evaluation: computed, or resumed from the store."""
        protocol = {
            **evaluation.protocol(),
            "model": self.target.model_hash,
            "data": self.target.data_info["content_hash"],
            "seed": self.options.seed,
            "batch_size": self.batch_size,
            "amp": str(self.runtime.amp_dtype),
        }
        if evaluation.corruption is not None:
            protocol["corruptions_dir"] = str(self.options.corruptions_dir or "")
        flag_file = self.store.file(evaluation.name, protocol, self._size(evaluation))
        key = flag_file.path.name
        self._files[evaluation.name] = key
        cached = self._cache.get(key)
        if cached is None and not keep_examples:
            cached = _complete(flag_file, attacked=evaluation.attack is not None)
        if cached is None or (keep_examples and cached.examples is None):
            data = self._data(evaluation)
            attack = (
                None if evaluation.attack is None else build_attack(evaluation.attack, self.runtime)
            )
            label = f"{self.target.name} {evaluation.name}"  # shown as text, never as markup
            with self._progress(label, len(data)) as advance:
                cached = compute_flags(
                    self.model,
                    data,
                    runtime=self.runtime,
                    batch_size=self.batch_size,
                    attack=attack,
                    seed=self.options.seed,
                    store=flag_file,
                    keep_examples=keep_examples,
                    on_batch=advance,
                    dist=self.dist,
                )
        self._cache[key] = cached
        self._by_name[evaluation.name] = cached
        return cached

    def flags_by_name(self) -> dict[str, Flags]:
        """Every evaluation's flags this evaluator produced or read back, by name."""
        return dict(self._by_name)

    def row(self, suite: str, attack: dict[str, Any], overrides: str) -> dict[str, Any]:
        """The columns every row of this target shares, plus the suite's attack columns."""
        t = self.target
        return {
            **t.identity,
            "suite": suite,
            "norm": "",
            **attack,
            "n_eval": len(t.test),
            "seed": self.options.seed,
            "dataset": t.data_info["dataset"],
            "is_jpeg_copy": t.data_info["is_jpeg_copy"],
            "device": self.runtime.describe(),
            "robench_version": robench.__version__,
            "git_revision": git_revision(),
            "date": now_iso(),
            "precision": self.runtime.precision,
            "torch_version": torch.__version__,
            "schema_version": SCHEMA_VERSION,
            "flags": self.sanity().text(),
            "overrides": overrides,
            "eval_seconds": 0.0,
            "flag_dir": str(t.flag_dir.resolve()),
            "flag_files": "",
        }

    def long_row(self) -> dict[str, Any]:
        """The columns of a row of a long board (one measurement per row)."""
        row = self.row("", {}, "")
        keys = ("run", "checkpoint", "n_eval", "seed", "dataset", "is_jpeg_copy", "device")
        keys += ("robench_version", "git_revision", "date", "model_id")
        keys += ("precision", "torch_version", "schema_version")
        return {k: row[k] for k in keys}

    # -- helpers --------------------------------------------------------------------------

    def _flag_seconds(self) -> float:
        """Compute seconds of the flags this suite's rows rest on, resumed parts included: the
        cost of the evaluation, even when its rows are rebuilt from complete flags."""
        return sum(self._cache[k].seconds for k in set(self._files.values()) if k in self._cache)

    def _indices(self, evaluation: Evaluation) -> np.ndarray | None:
        return evaluation.indices(len(self.target.test), lambda e: self.flags(e).measured)

    def _size(self, evaluation: Evaluation) -> int:
        indices = self._indices(evaluation)
        return len(self.target.test) if indices is None else len(indices)

    def _data(self, evaluation: Evaluation) -> ArrayDataset:
        data = self.target.test
        indices = self._indices(evaluation)
        if indices is not None:
            assert evaluation.corruption is None, "a subset of a corrupted copy is not defined"
            return data.subset(indices)
        if evaluation.corruption is None:
            return data
        from robench.corruptions.source import corrupted_test_set

        name, severity = evaluation.corruption
        images, labels, source = corrupted_test_set(
            name,
            severity,
            test_images=data.images,
            test_labels=data.labels,
            official_dir=self.options.corruptions_dir,
            n=len(data),
            seed=self.options.seed,
            device=self.runtime.device,
        )
        if not np.array_equal(labels, data.labels):
            raise DataError(
                f"CIFAR-10-C labels differ from the test set's ({name}); the official files "
                "follow the official test order: evaluate on the official CIFAR-10 test set"
            )
        assert source == corruption_source(self.options), source
        return ArrayDataset(images, labels, data.classes)

    @contextmanager
    def _progress(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        with make_progress(self.console) as progress:
            task = progress.add_task(label, total=total, rate=0.0, info="")
            started = time.perf_counter()
            done = 0

            def advance(count: int) -> None:
                nonlocal done
                done += count
                rate = done / max(time.perf_counter() - started, 1e-9)
                progress.update(task, completed=done, rate=rate)

            yield advance


def _first_batch(data: ArrayDataset, runtime: Runtime) -> tuple[torch.Tensor, torch.Tensor]:
    batches = BatchIterator(
        data, len(data), device=runtime.device, channels_last=runtime.channels_last
    )
    return batches.batch(0)


def _complete(flag_file: FlagFile, *, attacked: bool) -> Flags | None:
    """The stored flags if the evaluation is complete (no data to prepare, nothing to run)."""
    stored = flag_file.load()
    if len(stored) != flag_file.n:
        return None
    return Flags(stored.clean, stored.measured if attacked else None, stored.seconds)
