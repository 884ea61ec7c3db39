"""The evaluation stage: targets x a suite -> rows per board, one target at a time.

Rows are yielded as soon as a target's suite is done, so the caller (workflow.py) can store
them before the next target starts: an interrupted evaluation loses nothing finished, and the
unfinished target resumes from its flags. Under torchrun every rank evaluates (sharded) and
gets the rows; only rank 0 stores them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console
from rich.markup import escape

from robench.columns import BoardSchema
from robench.distributed import current
from robench.eval.evaluator import Evaluator
from robench.eval.suites import EvalOptions
from robench.eval.targets import EvalTarget
from robench.runs.lock import folder_lock
from robench.runtime import Runtime


@dataclass(frozen=True)
class TargetRows:
    """One target's rows under one suite, per board."""

    run: str
    boards: list[tuple[BoardSchema, list[dict[str, Any]]]]


def evaluate_targets(
    targets: Iterable[EvalTarget],
    suite: str,
    *,
    runtime: Runtime,
    console: Console,
    options: EvalOptions,
    keep_examples_of: frozenset[str] = frozenset(),
) -> Iterator[TargetRows]:
    """Run `suite` on each target in turn (its notes printed first); the targets named in
    `keep_examples_of` keep their transferable examples (see robench/flags.py)."""
    for target in targets:
        if current().is_main:
            for note in target.notes:
                console.print(f"[yellow]warning:[/yellow] {escape(note)}")
        keep = target.name in keep_examples_of
        evaluator = Evaluator(target, runtime, console, replace(options, keep_examples=keep))
        with folder_lock(target.flag_dir, "the flag folder", enabled=current().is_main):
            boards = evaluator.run(suite)
        yield TargetRows(str(target.identity["run"]), boards)
