"""The analysis commands: compare (two models, paired, on the same images), claims, report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robench.cli.common import app, console


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="A run directory, or a flag folder (.eval-state/...).")],
    b: Annotated[Path, typer.Argument(help="The same for the other model.")],
    suite: Annotated[str, typer.Option(help="The eval suite whose stored flags to compare.")] = (
        "pgd20"
    ),
    metric: Annotated[
        str, typer.Option(help="A per-image metric of the suite: ta, ra, aa_ra, fog_128, ...")
    ] = "ra",
    checkpoint: Annotated[
        str, typer.Option(help="The checkpoint of a run directory: best_ta, best_ra or last.")
    ] = "best_ta",
    n: Annotated[
        int | None, typer.Option(help="Compare the evaluations on n images (default: most).")
    ] = None,
) -> None:
    """A paired test of A and B on the same images: difference, interval, McNemar's p."""
    from robench.eval.suites import expand_suites
    from robench.leaderboard.compare import compare as run_compare
    from robench.leaderboard.compare import comparison_table

    expand_suites(suite)  # an unknown suite: one line
    result = run_compare(a, b, suite=suite, metric=metric, checkpoint=checkpoint, n=n)
    console.print(comparison_table(result))


@app.command()
def claims(
    folder: Annotated[
        Path, typer.Argument(help="A reproduction's --out folder (or its leaderboards/).")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Where claims.csv goes (default: beside leaderboards/).")
    ] = None,
) -> None:
    """Judge the paper's claims on a reproduction: holds / does not hold / inconclusive."""
    from robench.atomic import check_output_file
    from robench.leaderboard.claims import claims_table, write_claims

    if out is not None:
        check_output_file(out, "--out")
    frame, path = write_claims(folder, out)
    console.print(claims_table(frame, f"The paper's claims on {folder}"))
    console.print(f"wrote {path}", soft_wrap=True, markup=False)


@app.command()
def report(
    folder: Annotated[
        Path, typer.Argument(help="A reproduction's --out folder, or any folder of boards.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="The page (default DIR/report.html; figures beside it).")
    ] = None,
) -> None:
    """Rebuild the self-contained HTML report (and its figures) from a folder's boards, run
    directories and transfer analysis; nothing is evaluated."""
    from robench.atomic import check_output_file
    from robench.report.rebuild import rebuild_report

    if out is not None:
        check_output_file(out, "--out")
    page, figures = rebuild_report(folder, out)
    listing = "".join(f"\n  {p}" for p in figures)
    console.print(f"figures:{listing}\nreport: {page}", soft_wrap=True, markup=False)
