"""`[tables.*]` in a suite: which runs make which row of the paper's Tables 5-8 and Figure 3.

The rows of Table 3 follow from a run's pretext and scenario, but the other tables compare runs
that differ in ways a scenario label does not carry (the diversity weight of an ensemble
pretraining, the size of a pretraining set, the auxiliary head of a baseline). So a suite says
it outright, one row name per run, and the row names match the paper's (the rows of
`reference/paper_other_tables.csv`) wherever the paper has that row:

    [tables.table5]                      # row = one fine-tuned run
    ap_dpe = "ensemble-dpe-P3F4"
    [tables.table6]                      # row = an ensemble of fine-tuned runs
    "jigsaw+rotation" = ["jigsaw-P3F4", "rotation-P3F4"]
    [tables.figure3]                     # rows baseline and ours, plus the unforeseen budget
    baseline = "rotation-aux-P1F4"
    ours = "rotation-P3F4"
    n = 16                               # optional: images and steps of the 12 unforeseen
    steps = 20                           # attacks (default: the protocol's eval_n, 200 steps)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robench.errors import ConfigError

RUN_TABLES = ("table5", "table7", "table8", "figure3")
ENSEMBLE_TABLES = ("table6",)
FIGURE3_ROWS = ("baseline", "ours")
FIGURE3_OPTIONS = ("n", "steps")


@dataclass(frozen=True)
class TableSpec:
    """One paper table: its rows in order, each a run name or (Table 6) a tuple of runs."""

    name: str
    rows: dict[str, str | tuple[str, ...]]
    options: dict[str, int] = field(default_factory=dict)

    def runs(self) -> list[str]:
        """Every run the table needs, each once, in row order."""
        names: list[str] = []
        for value in self.rows.values():
            for run in (value,) if isinstance(value, str) else value:
                if run not in names:
                    names.append(run)
        return names

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": {k: v if isinstance(v, str) else list(v) for k, v in self.rows.items()},
            "options": dict(self.options),
        }


def parse_tables(doc: Any, runs: set[str], where: str) -> dict[str, TableSpec]:
    """Validate `[tables.*]` against the suite's run names; unknown tables and runs are errors."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: tables: expected a table of tables")
    known = (*RUN_TABLES, *ENSEMBLE_TABLES)
    tables = {}
    for name, table in doc.items():
        at = f"{where}: tables.{name}"
        if name not in known:
            raise ConfigError(f"{at}: unknown table; valid: {', '.join(known)}")
        if not isinstance(table, dict) or not table:
            raise ConfigError(f"{at}: expected a table of row = run")
        tables[name] = _parse_table(name, dict(table), runs, at)
    return tables


def _parse_table(name: str, table: dict[str, Any], runs: set[str], at: str) -> TableSpec:
    options: dict[str, int] = {}
    if name == "figure3":
        for key in FIGURE3_OPTIONS:
            if key in table:
                value = table.pop(key)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigError(f"{at}.{key}: expected a positive integer, got {value!r}")
                options[key] = value
        unknown = sorted(set(table) - set(FIGURE3_ROWS))
        if unknown:
            valid = ", ".join((*FIGURE3_ROWS, *FIGURE3_OPTIONS))
            raise ConfigError(f"{at}.{unknown[0]}: unknown key; valid: {valid}")
        missing = [row for row in FIGURE3_ROWS if row not in table]
        if missing:
            raise ConfigError(f"{at}: needs both rows, baseline and ours (missing {missing[0]})")
    rows: dict[str, str | tuple[str, ...]] = {}
    for row, value in table.items():
        if name in ENSEMBLE_TABLES:
            if not isinstance(value, list) or len(value) < 2:
                raise ConfigError(f"{at}.{row}: expected a list of at least 2 run names")
            members = tuple(_run_name(v, runs, f"{at}.{row}") for v in value)
            if len(set(members)) != len(members):
                raise ConfigError(f"{at}.{row}: a run is listed twice")
            rows[row] = members
        else:
            rows[row] = _run_name(value, runs, f"{at}.{row}")
    return TableSpec(name, rows, options)


def _run_name(value: Any, runs: set[str], at: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{at}: expected a run name, got {value!r}")
    if value not in runs:
        raise ConfigError(f"{at}: no run named {value!r} in this suite")
    return value
