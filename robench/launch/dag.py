"""The job DAG of a reproduction: what `robench reproduce` does, cut into jobs a cluster runs.

    pretrain.<name>   one per pretraining the selected runs start from
    train.<run>       one per fine-tuning: trains it, then its PGD-20 evaluation (after its
                      pretraining)
    eval.table6       the fine-tuned ensembles of Table 6 under PGD-20 (after their members)
    eval.figure3      Figure 3's two runs under the 12 unforeseen attacks (after both)
    report            the boards, Table 3, Tables 5-8, Figure 3, claims, the transfer analysis,
                      figures and report.html (after everything): `reproduce` itself, which
                      then finds every run trained and every evaluation's flags stored

Every job is a function of (suite, output folder, job id), so any machine that sees the
output folder can run any job, and a job run twice does nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass

from robench.config import RunSpec, Suite
from robench.config.tables import TableSpec

REPORT = "report"
KINDS = ("pretrain", "train", "eval", REPORT)


@dataclass(frozen=True)
class Job:
    id: str  # "pretrain.adv-rotation", "train.rotation-P3F4", "eval.table6", "report"
    kind: str
    target: str  # the pretraining, run or table it is about ("" for the report)
    after: tuple[str, ...] = ()  # job ids it waits for (SLURM: afterok)
    epochs: int = 0  # training epochs (the plan's cost estimate)
    images: int = 0  # training images per epoch (0: not known before the data is read)
    model: str = ""
    adversarial: bool = False
    eval_images: int = 0  # test images of its evaluation (0: the whole test set)

    @property
    def trains(self) -> bool:
        return self.kind in ("pretrain", "train")


def plan_jobs(suite: Suite, runs: list[RunSpec], tables: dict[str, TableSpec]) -> list[Job]:
    """The jobs of reproducing `runs` of `suite` (with its complete `tables`), in an order
    where every job comes after those it waits for."""
    jobs = [
        Job(
            id=f"pretrain.{spec.name}",
            kind="pretrain",
            target=spec.name,
            epochs=spec.protocol.epochs,
            images=spec.protocol.train_subset or 0,
            model=spec.protocol.model,
            adversarial=spec.adversarial,
        )
        for spec in suite.pretrainings(runs)
    ]
    for run in runs:
        after = () if run.pretraining is None else (f"pretrain.{run.pretraining.name}",)
        jobs.append(
            Job(
                id=f"train.{run.name}",
                kind="train",
                target=run.name,
                after=after,
                epochs=run.protocol.epochs,
                images=run.protocol.train_subset or 0,
                model=run.protocol.model,
                adversarial=run.adversarial,
                eval_images=run.protocol.eval_n or 0,
            )
        )
    for table in ("table6", "figure3"):
        if table in tables:
            members = sorted(_members(tables[table]))
            jobs.append(
                Job(
                    id=f"eval.{table}",
                    kind="eval",
                    target=table,
                    after=tuple(f"train.{m}" for m in members),
                )
            )
    jobs.append(Job(id=REPORT, kind=REPORT, target="", after=tuple(j.id for j in jobs)))
    return jobs


def _members(spec: TableSpec) -> set[str]:
    """The runs a table's rows are made of (Table 6: each ensemble's members)."""
    return set(spec.runs())


def job_by_id(jobs: list[Job], job_id: str) -> Job:
    for job in jobs:
        if job.id == job_id:
            return job
    from robench.errors import RobenchError

    known = ", ".join(j.id for j in jobs)
    raise RobenchError(f"no job {job_id!r} in this reproduction (jobs: {known})")
