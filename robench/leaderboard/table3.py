"""Table 3 of the paper, ours beside theirs: one row per (pretext, scenario).

Built from the pgd20 rows of a reproduction. The end-to-end baselines (P1F3, P1F4) use no
pretext, so, as in the paper, their rows repeat under each pretext. Reference numbers come
from the paper's Table 3 (CIFAR-10, ResNet-50v2, 100 fine-tuning epochs); on other scales and
on the JPEG copy the differences show the gap, not an error.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd
from rich.table import Table

from robench.config.specs import PAPER_PRETEXTS
from robench.leaderboard.paper_tables import OURS_VS_PAPER, ours_vs_paper_cells, protocol_caption
from robench.leaderboard.render import plain
from robench.leaderboard.schema import TABLE3
from robench.stats.intervals import fill_frame_intervals


def paper_table3() -> pd.DataFrame:
    with resources.files("robench.leaderboard").joinpath("reference/paper_table3.csv").open() as fh:
        paper = pd.read_csv(fh)
    return paper.rename(columns={"ta": "ta_paper", "ra": "ra_paper", "epochs": "epochs_paper"})


def build_table3(board: pd.DataFrame) -> pd.DataFrame:
    """Rows of a pgd20 board -> Table 3 rows with the paper's numbers and the differences."""
    pretexts = sorted(set(board["pretext"].dropna()) - {"none"}) or ["none"]
    rows = []
    for _, row in board.iterrows():
        for pretext in pretexts if row["pretext"] == "none" else [row["pretext"]]:
            rows.append({**row.to_dict(), "pretext": pretext})
    ours = pd.DataFrame(rows)
    table = ours.merge(paper_table3().drop(columns="table"), on=["pretext", "scenario"], how="left")
    table["ta_diff"] = table["ta"] - table["ta_paper"]
    table["ra_diff"] = table["ra"] - table["ra_paper"]
    table["epochs_diff"] = table["epochs_to_best"].astype("Float64") - table["epochs_paper"]
    order = {name: i for i, name in enumerate((*PAPER_PRETEXTS, "none"))}
    table = table.sort_values(
        ["pretext", "scenario"], key=lambda s: s.map(order) if s.name == "pretext" else s
    )
    table = fill_frame_intervals(table, TABLE3.intervals, lambda _m: "n_eval")
    return table[[c for c in TABLE3.names if c in table.columns]].reset_index(drop=True)


def table3_rich(table: pd.DataFrame, title: str) -> Table:
    out = Table(title=plain(title), header_style="bold")
    for name, justify in (
        ("pretext", "left"),
        ("scenario", "left"),
        *OURS_VS_PAPER,
    ):
        out.add_column(name, justify=justify, no_wrap=True)
    previous = None
    for _, row in table.iterrows():
        if previous is not None and row["pretext"] != previous:
            out.add_section()
        previous = row["pretext"]
        out.add_row(plain(row["pretext"]), plain(row["scenario"]), *ours_vs_paper_cells(row))
    out.caption = plain(protocol_caption(table)) if len(table) else None
    return out
