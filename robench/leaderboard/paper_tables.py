"""Tables 5-8 and Figure 3 of the paper, ours beside theirs, from a reproduction's boards.

Which run is which row comes from the suite's `[tables.*]` (robench/config/tables.py); the
numbers come from the pgd20 board (and, for Figure 3, the unforeseen board) of the same
reproduction, so every cell carries that row's protocol columns. The paper's numbers are
attached where the paper has a row of the same name; Table 7's paper rows are CIFAR-30K, -50K
and -150K (the last with extra Tiny-Images data robench does not have), so a reduced-scale
suite's sizes get none, and says so by leaving those cells empty.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd
from rich.table import Table

from robench.config.tables import TableSpec
from robench.leaderboard.render import integer, number, plain, row_estimate
from robench.leaderboard.schema import FIGURE3, SCHEMAS, UNFORESEEN_COLUMNS, BoardSchema
from robench.stats.intervals import fill_frame_intervals

TITLES = {
    "table5": "Table 5: single-task vs ensemble adversarial pretraining, (P3, F4)",
    "table6": "Table 6: ensembles of fine-tuned (P3, F4) models",
    "table7": "Table 7: pretraining set size",
    "table8": "Table 8: random-smoothing pretraining",
    "figure3": "Figure 3: one-shot AT with a rotation head (baseline) vs ours",
}


def paper_rows(table: str) -> dict[str, dict[str, float]]:
    """The paper's numbers for `table` ("5".."8"): row -> {ta, ra, epochs} (what it gives)."""
    ref = resources.files("robench.leaderboard").joinpath("reference/paper_other_tables.csv")
    with ref.open() as handle:
        frame = pd.read_csv(handle, dtype=str)
    rows: dict[str, dict[str, float]] = {}
    for _, entry in frame[frame["table"] == table].iterrows():
        names = entry["column"].split("/")
        values = entry["value"].split("/")
        cells = rows.setdefault(entry["row"], {})
        cells.update({k: float(v) for k, v in zip(names, values, strict=True)})
    return rows


def build_paper_table(
    spec: TableSpec, pgd20: pd.DataFrame, pretrain_images: dict[str, int | None]
) -> pd.DataFrame:
    """One row per `spec` row: the pgd20 row of its run (or ensemble), the paper's beside it.

    Table 6's ensembles are rows of `pgd20` named after the table row; every other row's run
    is a run of the suite. A row whose run has no pgd20 row is an error: a table with a silent
    hole would read as complete.
    """
    schema = SCHEMAS[spec.name]
    paper = paper_rows(spec.name.removeprefix("table"))
    by_run = {row["run"]: row for _, row in pgd20.iterrows()}
    rows = []
    for row_name, source in spec.rows.items():
        run = row_name if isinstance(source, tuple) else source
        if run not in by_run:
            raise KeyError(f"{spec.name}: row {row_name!r} needs a pgd20 result for {run!r}")
        ours = by_run[run].to_dict()
        ref = paper.get(row_name, {})
        record = {
            **ours,
            "row": row_name,
            "run": run,
            "pretrain_images": None if isinstance(source, tuple) else pretrain_images.get(run),
            "ta_paper": ref.get("ta"),
            "ra_paper": ref.get("ra"),
            "epochs_paper": ref.get("epochs"),
        }
        if isinstance(source, tuple):
            record["members"] = "+".join(source)
        rows.append(record)
    table = pd.DataFrame(rows)
    for ours_col, paper_col, diff in (
        ("ta", "ta_paper", "ta_diff"),
        ("ra", "ra_paper", "ra_diff"),
        ("epochs_to_best", "epochs_paper", "epochs_diff"),
    ):
        table[diff] = table[ours_col].astype("Float64") - table[paper_col].astype("Float64")
    return _in_schema(table, schema)


def build_figure3(spec: TableSpec, pgd20: pd.DataFrame, unforeseen: pd.DataFrame) -> pd.DataFrame:
    """Baseline and ours: PGD-20 TA/RA and the 12 unforeseen accuracies, one row each."""
    pgd = {row["run"]: row for _, row in pgd20.iterrows()}
    unf = {row["run"]: row for _, row in unforeseen.iterrows()}
    rows = []
    for row_name, run in spec.rows.items():
        assert isinstance(run, str)
        if run not in pgd or run not in unf:
            raise KeyError(f"figure3: row {row_name!r} needs pgd20 and unforeseen results")
        attacked = unf[run]
        rows.append(
            {
                **pgd[run].to_dict(),
                "row": row_name,
                "run": run,
                **{c: attacked[c] for c in UNFORESEEN_COLUMNS},
                "unforeseen_mean": attacked["mean"],
                "unforeseen_worst": attacked["worst"],
                "unforeseen_n": attacked["n_eval"],
                "unforeseen_overrides": attacked["overrides"],
            }
        )
    return _in_schema(pd.DataFrame(rows), FIGURE3)


def _in_schema(table: pd.DataFrame, schema: BoardSchema) -> pd.DataFrame:
    table = fill_frame_intervals(table, schema.intervals, _n_column) if len(table) else table
    for name in schema.names:
        if name not in table.columns:
            table[name] = None
    return table[list(schema.names)].reset_index(drop=True)


def _n_column(metric: str) -> str:
    """Where a derived row's metric got its n: the unforeseen board's images, or PGD-20's."""
    return (
        "unforeseen_n"
        if metric in (*UNFORESEEN_COLUMNS, "unforeseen_mean", "unforeseen_worst")
        else "n_eval"
    )


def paper_table_rich(table: pd.DataFrame, name: str, title: str) -> Table:
    """Rows as in the paper, our TA/RA/epochs beside the paper's and the differences."""
    out = Table(title=plain(f"{TITLES[name]}\n{title}"), header_style="bold")
    for header, justify in (("row", "left"), ("run", "left"), *OURS_VS_PAPER):
        out.add_column(header, justify=justify, no_wrap=header not in ("row", "run"))
    for _, row in table.iterrows():
        out.add_row(plain(row["row"]), plain(row["run"]), *ours_vs_paper_cells(row))
    out.caption = plain(protocol_caption(table))
    return out


# Ours with the 95% interval, the paper's beside each (the differences stay in the CSV).
OURS_VS_PAPER = (
    ("TA %", "right"),
    ("paper", "right"),
    ("RA %", "right"),
    ("paper", "right"),
    ("epochs", "right"),
    ("paper", "right"),
)


def ours_vs_paper_cells(row: pd.Series) -> list[str]:
    """TA, RA and epochs, each beside the paper's: one table row's cells."""
    return [
        row_estimate(row, "ta"),
        _paper(row["ta_paper"]),
        row_estimate(row, "ra"),
        _paper(row["ra_paper"]),
        integer(row["epochs_to_best"]),
        integer(row["epochs_paper"]),
    ]


def _paper(value: object) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):.1f}"


def figure3_rich(table: pd.DataFrame, title: str) -> Table:
    """Figure 3 as a table: one column per model, one line per metric, ours - baseline last."""
    out = Table(title=plain(f"{TITLES['figure3']}\n{title}"), header_style="bold")
    rows = {row["row"]: row for _, row in table.iterrows()}
    order = [r for r in ("baseline", "ours") if r in rows]
    out.add_column("metric")
    for name in order:
        out.add_column(plain(f"{name} ({rows[name]['run']})"), justify="right")
    if len(order) == 2:
        out.add_column("ours - baseline", justify="right")
    for metric in ("ta", "ra", *UNFORESEEN_COLUMNS, "unforeseen_mean", "unforeseen_worst"):
        cells = [row_estimate(rows[name], metric) for name in order]
        if len(order) == 2:
            diff = rows["ours"][metric] - rows["baseline"][metric]
            cells.append(number(diff, signed=True))
        out.add_row(metric, *cells)
    out.caption = plain(
        protocol_caption(table)
        + "; paper: ours +1.97 TA, -0.74 RA, +1.03 to +6.53 on every unforeseen "
        "attack (ResNet-50v2, CIFAR-10)"
    )
    return out


def protocol_caption(table: pd.DataFrame) -> str:
    """Our protocol (from the first row: a table comes from one reproduction) and the paper's."""
    if not len(table):
        return ""
    first = table.iloc[0]
    return (
        f"ours: {first['model']}, {first['attack']} eps={first['eps']} steps={first['steps']} "
        f"n={first['n_eval']}, {first['dataset']}, {first['device']}; paper: ResNet-50v2, "
        "PGD-20, CIFAR-10, n=10000"
    )
