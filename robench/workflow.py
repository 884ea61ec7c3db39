"""The chain of stages behind the commands: train -> evaluate -> boards -> tables -> report.

Each stage is a function of (session, inputs) returning what the next needs, held in memory:
the training stage returns run records, evaluation stores rows into a `BoardSet` as they come
and keeps them, the paper tables and the report are made from that. The CLI and Python
callers build a `Session` and call these; nothing here parses arguments.

Under torchrun every rank runs this chain: fine-tuning and evaluation are sharded across the
ranks, while pretraining, the boards, figures, transfer analysis and report are rank 0's
alone (the others wait at a barrier; what they need next is on disk when they go on).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from rich.text import Text

from robench.atomic import check_output_dir, write_text_atomic
from robench.config import RunSpec, Suite
from robench.config.tables import TableSpec
from robench.distributed import current
from robench.eval.request import STATE_FOLDER, EvalRequest
from robench.eval.stage import evaluate_targets
from robench.eval.suites import EvalOptions, Overrides
from robench.eval.targets import EvalTarget, ensemble_target, run_target
from robench.leaderboard.board_set import BoardSet
from robench.leaderboard.paper_boards import complete_tables, write_paper_tables, write_table3
from robench.leaderboard.render import board_view, row_line
from robench.session import Layout, Session
from robench.train.stage import TrainedSuite, train_suite


@dataclass(frozen=True)
class Reproduction:
    """What `reproduce` made: the boards (in memory and on disk), figures and the report."""

    boards: BoardSet
    figures: list[Path]
    report: Path


def train(session: Session, suite: Suite, out: Path, only: list[str] | None) -> TrainedSuite:
    """Pretrain what the selected runs need (each pretraining once), then train them."""
    check_output_dir(out, "--out")
    return train_suite(session.train_env(suite), suite, suite.select(only), out)


def evaluate(
    session: Session,
    targets: Iterable[EvalTarget],
    suite: str,
    boards: BoardSet,
    options: EvalOptions,
    *,
    keep_examples_of: frozenset[str] = frozenset(),
) -> BoardSet:
    """Run `suite` on each target; its rows are stored before the next target starts.

    `keep_examples_of` names the runs whose transferable examples are kept (transfer analysis).
    """
    main = current().is_main
    stored: list[str] = []
    for result in evaluate_targets(
        targets,
        suite,
        runtime=session.runtime,
        console=session.console,
        options=options,
        keep_examples_of=keep_examples_of,
    ):
        for schema, rows in result.boards:
            if main:
                boards.store(schema, rows)
                for row in rows if schema.display != "path" else ():
                    session.console.print(row_line(schema.name, row))
            stored += [schema.name] if schema.name not in stored else []
    for name in stored if main else ():
        title = f"{name}: {boards.path(name)}"
        session.console.print(board_view(boards.schema(name), boards.ours(name), title))
    return boards


def evaluate_request(session: Session, request: EvalRequest) -> BoardSet:
    """`robench eval`: the request's targets under its suite, into its leaderboard folder;
    with --eps-sweep, once per eps (the same images; resumable per eps), then the curve."""
    boards = BoardSet(request.leaderboard_dir, warn=session.warn)
    for options in request.sweep_options():
        evaluate(session, request.targets(), request.suite, boards, options)
    if request.eps_sweep and current().is_main:
        _draw_eps_sweep(session, boards, request)
    return boards


def _draw_eps_sweep(session: Session, boards: BoardSet, request: EvalRequest) -> None:
    import pandas as pd

    from robench.epsilon import parse_eps
    from robench.eval.suites import expand_suites
    from robench.report.eps_curve import plot_eps_sweep, sweep_rows

    board = expand_suites(request.suite)[0].board.name
    rows = sweep_rows(pd.read_csv(boards.path(board)), [parse_eps(e) for e in request.eps_sweep])
    path = plot_eps_sweep(rows, boards.folder / f"{request.suite}-eps-sweep.png")
    session.console.print(Text(f"eps sweep: {path}"), soft_wrap=True)


def reproduce(
    session: Session,
    suite: Suite,
    out: Path,
    only: list[str] | None,
    *,
    precision: str = "fp32",
) -> Reproduction:
    """Train every run (pretraining first), evaluate PGD-20 (in `precision`), then the
    paper's tables, the transfer analysis of the (P3, F4) models, figures and the report."""
    check_output_dir(out, "--out")
    layout = Layout(out)
    runs = suite.select(only)
    trained = train_suite(session.train_env(suite), suite, runs, layout.runs)
    boards = BoardSet(layout.leaderboards, warn=session.warn)
    transfer = transfer_runs(runs)
    options = EvalOptions(seed=suite.protocol.seed, precision=precision)
    targets = (run_target(trained.run_dir(r.name), data_dir=session.data_dir) for r in runs)
    evaluate(session, targets, "pgd20", boards, options, keep_examples_of=transfer)
    tables = complete_tables(suite.tables, {r.name for r in runs}, session.console)
    evaluate_table_models(session, tables, trained, boards, options)
    result = current().on_main(
        lambda: _tables_and_report(session, suite, layout, runs, trained, tables, boards, options)
    )
    return result or Reproduction(boards, [], layout.report)


def transfer_runs(runs: list[RunSpec]) -> frozenset[str]:
    """The paper's Table 4 / Figure 5 models: one plain (P3, F4) run per pretext, two or more."""
    p3f4 = frozenset(r.name for r in runs if r.scenario == "P3F4" and r.is_table3_cell)
    return p3f4 if len(p3f4) >= 2 else frozenset()


def evaluate_table_models(
    session: Session,
    tables: dict[str, TableSpec],
    trained: TrainedSuite,
    boards: BoardSet,
    options: EvalOptions,
) -> None:
    """What the paper tables evaluate beyond each run's PGD-20 (every rank takes part).

    Table 6: each ensemble under PGD-20, a row of pgd20.csv named after its table row.
    Figure 3: its two runs under the 12 unforeseen attacks.
    """
    if "table6" in tables:
        ensembles = (
            ensemble_target(
                [trained.run_dir(m) for m in members],
                name=row,
                data_dir=session.data_dir,
                state_root=boards.folder / STATE_FOLDER,
            )
            for row, members in tables["table6"].rows.items()
            if isinstance(members, tuple)
        )
        evaluate(session, ensembles, "pgd20", boards, options)
    if "figure3" in tables:
        spec = tables["figure3"]
        n = spec.options.get("n")
        targets = (
            run_target(trained.run_dir(str(run)), data_dir=session.data_dir, n=n)
            for run in spec.rows.values()
        )
        steps = replace(options, overrides=Overrides(steps=spec.options.get("steps")))
        evaluate(session, targets, "unforeseen", boards, steps)


def _tables_and_report(
    session: Session,
    suite: Suite,
    layout: Layout,
    runs: list[RunSpec],
    trained: TrainedSuite,
    tables: dict[str, TableSpec],
    boards: BoardSet,
    options: EvalOptions,
) -> Reproduction:
    """Table 3, Tables 5-8, Figure 3, the figures, the transfer analysis and the HTML report."""
    from robench.leaderboard.claims import claims_for_report, claims_table, write_claims
    from robench.report import plot_ta_ra
    from robench.report.page import report_html
    from robench.report.rebuild import raw_downloads

    console = session.console
    shown = {"pgd20": boards.ours("pgd20"), "table3": write_table3(boards, runs, console)}

    def images(run: str) -> int | None:
        return trained.pretrain_images(suite.runs[run])

    shown.update(write_paper_tables(tables, boards, images, console))
    run_names = {r.name for r in runs}
    figures = [plot_ta_ra(boards.ours("pgd20", run_names), layout.figures / "ta_ra.png")]
    figures += _board_figures(layout, runs, trained, boards)
    figures.append(_corruption_preview(session, suite, layout.figures / "corruptions_preview.png"))
    transfer = transfer_runs(runs)
    if transfer:
        paths = [trained.run_dir(r.name) for r in runs if r.name in transfer]
        figures += transfer_analysis(
            session,
            paths,
            layout.transfer,
            layout.figures,
            seed=options.seed,
            precision=options.precision,
        )
    claims, claims_path = write_claims(layout.root)
    console.print(claims_table(claims, f"The paper's claims on {suite.name} ({claims_path})"))
    shown["claims"] = claims_for_report(claims)
    downloads = raw_downloads(layout.root)
    page = report_html(f"robench reproduce {suite.name}", shown, figures, downloads)
    write_text_atomic(layout.report, page)
    listing = "\n".join(f"  {p}" for p in figures)
    console.print(f"figures:\n{listing}\nreport: {layout.report}", soft_wrap=True, markup=False)
    return Reproduction(boards, figures, layout.report)


def _board_figures(
    layout: Layout, runs: list[RunSpec], trained: TrainedSuite, boards: BoardSet
) -> list[Path]:
    """Figure 3's unforeseen attacks as grouped bars (when they were evaluated) and the
    training curves of the end-to-end baselines and the (P3, F4) models."""
    from robench.eval.suites.unforeseen import COLUMNS as UNFORESEEN
    from robench.report.board_figures import plot_training_curves, plot_unforeseen

    figures = []
    if "unforeseen" in boards and len(boards.ours("unforeseen")):
        bars = layout.figures / "unforeseen.png"
        figures.append(plot_unforeseen(boards.ours("unforeseen"), list(UNFORESEEN), bars))
    curves = [r for r in runs if r.is_table3_cell and r.scenario in ("P1F4", "P3F4")]
    if curves:
        paths = [trained.run_dir(r.name) for r in curves]
        figures.append(plot_training_curves(paths, layout.figures / "training_curves.png"))
    return figures


def _corruption_preview(session: Session, suite: Suite, path: Path) -> Path:
    """The contact sheet of the first test image: clean, and 15 corruptions x 5 severities."""
    from robench.corruptions.preview import contact_sheet
    from robench.data import load_test
    from robench.data.convert import to_float_chw

    test, _ = load_test(suite.protocol.data, session.data_dir, n=1)
    return contact_sheet(to_float_chw(test.images[0]), path, seed=suite.protocol.seed)


def transfer_analysis(
    session: Session,
    run_dirs: list[Path],
    out: Path,
    figures_dir: Path,
    *,
    n: int | None = None,
    seed: int = 0,
    suite_name: str = "pgd20",
    precision: str = "fp32",
) -> list[Path]:
    """Transfer ASR matrix and overlaps (CSV + rich tables) and their two figures (one process:
    under torchrun call it on rank 0 alone)."""
    from robench.eval.transfer import asr_table, overlap_table, transfer_matrix, write_transfer
    from robench.report import plot_asr_heatmap, plot_overlap

    check_output_dir(out, "--out")
    result = transfer_matrix(
        run_dirs,
        suite_name,
        n,
        runtime=session.runtime,
        data_dir=session.data_dir,
        seed=seed,
        console=session.console,
        precision=precision,
    )
    csvs = write_transfer(result, out)
    session.console.print(asr_table(result))
    session.console.print(overlap_table(result))
    listing = "\n".join(f"  {p}" for p in csvs)
    session.console.print(f"transfer tables:\n{listing}", soft_wrap=True, markup=False)
    return [
        plot_asr_heatmap(result.asr, figures_dir / "transfer_asr.png"),
        plot_overlap(result.overlap, figures_dir / "transfer_overlap.png"),
    ]
