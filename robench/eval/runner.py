"""Run evaluation suites on a target and turn the per-example flags into leaderboard rows.

For every evaluation the per-example flags are computed batch by batch and stored as they go
(`FlagStore`), so a killed `robench eval` reruns only what is missing and produces exactly the
numbers an uninterrupted one would (each batch's attack is seeded by (seed, batch index)).
Accuracy is always computed from flags, which is also what makes per-example worst cases over
a group of attacks possible.

Under torchrun the batches are shared out: in each round of world_size batches rank r takes
the r-th, the flags are gathered, and rank 0 saves them, so a sharded evaluation stores (and
resumes from) exactly the flags of a single process. Every suite that loops over batches
shards this way: clean, PGD (`pgd20`, and PGD inside `autoattack`), `unforeseen`, and
`corruptions` (each rank generates the same corrupted images). AutoAttack itself runs on
rank 0 alone, the other ranks waiting: its implementation owns its batching and restarts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

import robench
from robench.attacks import Attack, model_mode
from robench.attacks.factory import pgd_from_config
from robench.attacks.unforeseen import unforeseen_attack
from robench.data import ArrayDataset
from robench.distributed import current
from robench.epsilon import parse_eps
from robench.eval.accuracy import batch_generator
from robench.eval.autoattack import VERSION as AA_VERSION
from robench.eval.autoattack import autoattack_flags
from robench.eval.flagstore import FlagFile, FlagStore
from robench.eval.sanity import SanityReport, check_model
from robench.eval.suites import (
    AUTOATTACK_EPS,
    CLEAN,
    UNFORESEEN_CALIBRATION,
    Evaluation,
    Overrides,
    check_overrides,
    corruption_evaluations,
    expand_suites,
    pgd_config,
    pgd_evaluation,
    unforeseen_evaluations,
)
from robench.eval.targets import EvalTarget
from robench.leaderboard.schema import (
    AUTOATTACK,
    CORRUPTIONS,
    CORRUPTIONS_LONG,
    PGD20,
    UNFORESEEN,
    BoardSchema,
)
from robench.progress import make_progress
from robench.provenance import git_revision, now_iso
from robench.runtime import Runtime

BOARDS: dict[str, BoardSchema] = {
    "pgd20": PGD20,
    "autoattack": AUTOATTACK,
    "unforeseen": UNFORESEEN,
    "corruptions": CORRUPTIONS,
}


@dataclass
class EvalOptions:
    seed: int = 0
    overrides: Overrides = field(default_factory=Overrides)
    corruptions_dir: Path | None = None  # official CIFAR-10-C files; None = generate
    allow_randomized: bool = False
    allow_training_mode: bool = False
    batch_size: int | None = None


class Evaluator:
    """Evaluates one target: sanity checks once, then any suite, flags stored as they go."""

    def __init__(
        self, target: EvalTarget, runtime: Runtime, console: Console, options: EvalOptions
    ) -> None:
        self.target = target
        self.runtime = runtime
        self.console = console
        self.options = options
        self.model = runtime.prepare(target.model)
        self.model.eval()
        self.ctx = current()
        self.store = FlagStore(target.flag_dir, writable=self.ctx.is_main)
        self.batch_size = options.batch_size or target.batch_size
        self._sanity: SanityReport | None = None
        self._cache: dict[str, np.ndarray] = {}
        self._aa_flags: set[str] = set()

    # -- public --------------------------------------------------------------------------

    def sanity(self) -> SanityReport:
        if self._sanity is None:
            x, y = self._batch(self.target.test, 0, min(self.batch_size, 64))
            with self.runtime.autocast():
                self._sanity = check_model(
                    self.model,
                    x,
                    y,
                    allow_randomized=self.options.allow_randomized,
                    allow_training_mode=self.options.allow_training_mode,
                )
        return self._sanity

    def run(self, suite: str) -> list[tuple[BoardSchema, list[dict[str, Any]]]]:
        """Rows per board for `suite` (`all`: every suite)."""
        if suite != "all":  # `all` applies each override where it means something
            check_overrides(suite, self.options.overrides)
        self.sanity()
        out = []
        for name in expand_suites(suite):
            start = time.perf_counter()
            rows = getattr(self, f"_suite_{name}")()
            seconds = time.perf_counter() - start
            for row in rows[0]:
                row["eval_seconds"] = seconds
            out.append((BOARDS[name], rows[0]))
            if len(rows) > 1:
                out.append((CORRUPTIONS_LONG, rows[1]))
        return out

    # -- suites --------------------------------------------------------------------------

    def _suite_pgd20(self) -> list[list[dict[str, Any]]]:
        cfg = pgd_config(self.options.overrides)
        clean = self.flags(CLEAN)
        robust = self.flags(pgd_evaluation(cfg))
        row = self._row("pgd20", cfg_columns(cfg), self.options.overrides.text())
        row.update(ta=_pct(clean), ra=_pct(robust))
        return [[row]]

    def _suite_autoattack(self) -> list[list[dict[str, Any]]]:
        eps = self.options.overrides.eps or AUTOATTACK_EPS
        clean = self.flags(CLEAN)
        pgd = self.flags(pgd_evaluation(pgd_config(Overrides(eps=self.options.overrides.eps))))
        aa = self.flags(Evaluation("autoattack", "autoattack", {"eps": eps, "version": AA_VERSION}))
        columns = {
            "attack": f"autoattack-{AA_VERSION}",
            "eps": eps,
            "eps_value": parse_eps(eps),
            "step_size": "adaptive",
            "steps": 100,
            "restarts": 1,
        }
        row = self._row("autoattack", columns, self.options.overrides.text(("eps",)))
        row.update(
            ta=_pct(clean),
            aa_ra=_pct(aa),
            pgd20_ra=_pct(pgd),
            worst_ra=_pct(aa & pgd),
            aa_version=AA_VERSION,
        )
        self._add_flags(row, self._aa_flags)
        return [[row]]

    def _suite_unforeseen(self) -> list[list[dict[str, Any]]]:
        steps = self.options.overrides.steps
        evaluations = unforeseen_evaluations(steps)
        clean = self.flags(CLEAN)
        flags = {e.name: self.flags(e) for e in evaluations}
        columns = {
            "attack": "unforeseen-12 (Kang et al. 2019)",
            "eps": UNFORESEEN_CALIBRATION,
            "eps_value": None,
            "step_size": "kang2019-default",
            "steps": evaluations[0].protocol["steps"],
            "restarts": 1,
        }
        row = self._row("unforeseen", columns, self.options.overrides.text(("steps",)))
        row["ta"] = _pct(clean)
        row.update({name: _pct(f) for name, f in flags.items()})
        row["mean"] = float(np.mean([_pct(f) for f in flags.values()]))
        row["worst"] = _pct(np.logical_and.reduce(list(flags.values())))
        return [[row]]

    def _suite_corruptions(self) -> list[list[dict[str, Any]]]:
        clean = self.flags(CLEAN)
        evaluations = corruption_evaluations()
        accuracy = {e.name: _pct(self.flags(e)) for e in evaluations}
        source = self._corruption_source
        row = self._row("corruptions", {}, "")
        row.update(ta=_pct(clean), corruption_source=source)
        row["mean"] = float(np.mean(list(accuracy.values())))
        long_rows = []
        for e in evaluations:
            name, severity = e.protocol["corruption"], e.protocol["severity"]
            row[name] = row.get(name, 0.0) + accuracy[e.name] / 5
            long_rows.append(
                {
                    "run": self.target.identity["run"],
                    "checkpoint": self.target.identity["checkpoint"],
                    "corruption": name,
                    "severity": severity,
                    "accuracy": accuracy[e.name],
                    "corruption_source": source,
                    "n_eval": len(self.target.test),
                    "seed": self.options.seed,
                    "dataset": self.target.data_info["dataset"],
                    "is_jpeg_copy": self.target.data_info["is_jpeg_copy"],
                    "device": self.runtime.describe(),
                    "robench_version": robench.__version__,
                    "git_revision": git_revision(),
                    "date": now_iso(),
                }
            )
        for key in [c for c in row if c not in CORRUPTIONS.dtypes]:
            del row[key]
        return [[row], long_rows]

    # -- flags ---------------------------------------------------------------------------

    def flags(self, evaluation: Evaluation) -> np.ndarray:
        """Per-example flags of one evaluation: computed, or resumed from the store."""
        protocol = {
            **evaluation.protocol,
            "kind": evaluation.kind,
            "model": self.target.model_hash,
            "data": self.target.data_info["content_hash"],
            "seed": self.options.seed,
            "batch_size": self.batch_size,
            "amp": str(self.runtime.amp_dtype),
        }
        if evaluation.kind == "corruption":
            protocol["corruptions_dir"] = str(self.options.corruptions_dir or "")
        flag_file = self.store.file(evaluation.name, protocol, len(self.target.test))
        key = flag_file.path.name
        if key not in self._cache:
            self._cache[key] = self._compute(evaluation, flag_file)
        return self._cache[key]

    def _compute(self, evaluation: Evaluation, flag_file: FlagFile) -> np.ndarray:
        data = self.target.test
        if flag_file.is_complete():
            return flag_file.load()
        label = f"{self.target.name} {evaluation.name}"
        with self._progress(label, len(data)) as advance:
            if evaluation.kind == "clean":
                return self._loop(data, flag_file, None, advance)
            if evaluation.kind == "pgd":
                cfg = replace(pgd_config(Overrides()), **_attack_fields(evaluation.protocol))
                return self._loop(data, flag_file, pgd_from_config(cfg, self.runtime), advance)
            if evaluation.kind == "unforeseen":
                p = evaluation.protocol
                attack = unforeseen_attack(
                    p["family"], p["strength"], p["steps"], amp_dtype=self.runtime.amp_dtype
                )
                return self._loop(data, flag_file, attack, advance)
            if evaluation.kind == "autoattack":

                def on_main() -> np.ndarray:
                    flags, self._aa_flags = autoattack_flags(
                        self.model,
                        data,
                        flag_file,
                        eps=parse_eps(evaluation.protocol["eps"]),
                        seed=self.options.seed,
                        runtime=self.runtime,
                        batch_size=self.batch_size,
                        on_batch=advance,
                    )
                    return flags

                flags = self.ctx.on_main(on_main)  # then the flag file is complete
                return flags if flags is not None else flag_file.load()
            if evaluation.kind == "corruption":
                return self._corruption(evaluation, flag_file, advance)
        raise ValueError(f"unknown evaluation kind {evaluation.kind!r}")

    @property
    def _corruption_source(self) -> str:
        from robench.corruptions.source import OFFICIAL_LABEL, generated_label

        return (
            OFFICIAL_LABEL if self.options.corruptions_dir else generated_label(self.options.seed)
        )

    def _corruption(
        self, evaluation: Evaluation, flag_file: FlagFile, advance: Callable[[int], None]
    ) -> np.ndarray:
        from robench.corruptions.source import corrupted_test_set

        data = self.target.test
        images, labels, source = corrupted_test_set(
            evaluation.protocol["corruption"],
            evaluation.protocol["severity"],
            test_images=data.images,
            test_labels=data.labels,
            official_dir=self.options.corruptions_dir,
            n=len(data),
            seed=self.options.seed,
            device=self.runtime.device,
        )
        if not np.array_equal(labels, data.labels):
            from robench.errors import DataError

            raise DataError(
                f"CIFAR-10-C labels differ from the test set's ({evaluation.protocol['corruption']}"
                "); the official files follow the official test order: evaluate on the "
                "official CIFAR-10 test set"
            )
        assert source == self._corruption_source, (source, self._corruption_source)
        corrupted = ArrayDataset(images, labels, data.classes)
        return self._loop(corrupted, flag_file, None, advance)

    def _loop(
        self,
        data: ArrayDataset,
        flag_file: FlagFile,
        attack: Attack | None,
        advance: Callable[[int], None],
    ) -> np.ndarray:
        """Correct (clean, or clean and under attack) flags, batch by batch, saved as they go.

        Under torchrun a round of batches (one per rank) is the unit: rank 0 saves the flags
        after each round, and a rerun continues after the last saved batch.
        """
        flags = list(flag_file.load())
        if flags:
            advance(len(flags))
        bs = self.batch_size
        num_batches = -(-len(data) // bs)
        with model_mode(self.model, train=False):
            for round_ in self.ctx.rounds(num_batches, len(flags) // bs):
                ok = torch.zeros(0, dtype=torch.bool, device=self.runtime.device)
                if round_.mine is not None:
                    x, y = self._batch(data, round_.mine * bs, bs)
                    with torch.no_grad(), self.runtime.autocast():
                        ok = self.model(x).argmax(1) == y
                    if attack is not None:
                        generator = batch_generator(self.runtime, self.options.seed, round_.mine)
                        x_adv = attack.perturb(self.model, x, y, generator)
                        with torch.no_grad(), self.runtime.autocast():
                            ok &= self.model(x_adv).argmax(1) == y
                sizes = [min(bs, len(data) - b * bs) for b in round_.batches]
                gathered = self.ctx.gather_round(ok, sizes)
                flags.extend(gathered.cpu().numpy().tolist())
                if self.ctx.is_main:
                    flag_file.save(np.asarray(flags, dtype=bool))
                advance(len(gathered))
        return np.asarray(flags, dtype=bool)

    def _batch(
        self, data: ArrayDataset, start: int, size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.from_numpy(data.images[start : start + size]).to(self.runtime.device)
        x = images.permute(0, 3, 1, 2).float().div_(255)
        if self.runtime.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = x.contiguous()
        y = torch.from_numpy(data.labels[start : start + size]).to(self.runtime.device)
        return x, y

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

    # -- rows ----------------------------------------------------------------------------

    def _row(self, suite: str, attack_columns: dict[str, Any], overrides: str) -> dict[str, Any]:
        t = self.target
        row: dict[str, Any] = {
            **{k: v for k, v in t.identity.items()},
            "suite": suite,
            **attack_columns,
            "n_eval": len(t.test),
            "seed": self.options.seed,
            "dataset": t.data_info["dataset"],
            "is_jpeg_copy": t.data_info["is_jpeg_copy"],
            "device": self.runtime.describe(),
            "robench_version": robench.__version__,
            "git_revision": git_revision(),
            "date": now_iso(),
            "flags": self.sanity().text(),
            "overrides": overrides,
            "eval_seconds": 0.0,
        }
        return row

    @staticmethod
    def _add_flags(row: dict[str, Any], extra: set[str]) -> None:
        if extra:
            parts = set(filter(None, str(row["flags"]).split(";"))) | extra
            row["flags"] = ";".join(sorted(parts))


def cfg_columns(cfg: Any) -> dict[str, Any]:
    return {
        "attack": f"pgd-{cfg.norm}",
        "eps": cfg.eps,
        "eps_value": cfg.eps_value,
        "step_size": cfg.step_size,
        "steps": cfg.steps,
        "restarts": cfg.restarts,
    }


def _attack_fields(protocol: dict[str, Any]) -> dict[str, Any]:
    keys = ("eps", "step_size", "steps", "restarts", "bn_mode")
    return {k: protocol[k] for k in keys if k in protocol}


def _pct(flags: np.ndarray) -> float:
    return float(np.mean(flags)) * 100 if len(flags) else float("nan")
