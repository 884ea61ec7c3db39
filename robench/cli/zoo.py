"""RobustBench's published entries as a board: `robench leaderboard robustbench`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from robench.atomic import check_output_file
from robench.cli.common import console, leaderboard_app


@leaderboard_app.command("robustbench")
def leaderboard_robustbench(
    out: Annotated[Path, typer.Option(help="The board to write (rows upserted by model).")],
    threat_model: Annotated[str, typer.Option(help="Linf or L2.")] = "Linf",
    model_info: Annotated[
        Path | None,
        typer.Option(help="A RobustBench checkout's model_info/ (default: robench's snapshot)."),
    ] = None,
) -> None:
    """Write RobustBench's published CIFAR-10 entries (clean and AutoAttack accuracy) as
    reference rows that the report shows beside robench's."""
    from robench.leaderboard.schema import ROBUSTBENCH
    from robench.leaderboard.store import upsert_rows
    from robench.models.robustbench_published import published_rows

    check_output_file(out, "--out")
    rows = published_rows(threat_model, model_info)
    board = upsert_rows(out, rows, ROBUSTBENCH)
    source = rows[0]["source"] if rows else "no entries"
    console.print(
        f"{len(rows)} {threat_model} entries ({source}) -> {out} ({len(board)} rows)",
        soft_wrap=True,
        markup=False,
    )
