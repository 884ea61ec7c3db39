"""Leaderboard CSVs: read, validate, and upsert rows by key under a file lock.

Two evaluations writing the same board at once must not lose each other's rows, and a crash
mid-write must leave the previous board intact: every write holds `<csv>.lock` and replaces
the file atomically.

No row is replaced silently by another model's. The key of an evaluation board includes the
model's identity (`model_id`) and the arithmetic (`precision`): a row replaces only the same
model's row under the same protocol, so a bf16 evaluation sits beside the fp32 one. A second
model under an existing name is kept as its own row, with a warning that says how to tell
them apart. A row written before rows carried an identity or a precision is replaced by the
same name's new row, as it was then, with a note saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from robench.atomic import atomic_write
from robench.columns import FORMULA_STARTS, IMPLIED, is_v2_column
from robench.epsilon import parse_eps
from robench.errors import ConfigError, RobenchError
from robench.leaderboard.schema import PGD20, BoardSchema, schema_for

LOCK_TIMEOUT_S = 600
MODEL_ID = "model_id"
# Key columns a row may lack because it was written before they were part of the key: the
# model's identity, and the arithmetic (version 1 boards had no precision).
LEGACY_KEY = (MODEL_ID, "precision")


class LeaderboardError(RobenchError):
    """A file that is not a valid leaderboard."""


def read_board(path: Path, schema: BoardSchema | None = None) -> pd.DataFrame:
    """A leaderboard as a typed DataFrame; a one-line error if it is not one."""
    frame = read_raw(path)
    schema = schema or schema_for(path, frame)
    if schema is None:
        raise LeaderboardError(f"{path} is not a robench leaderboard (no known schema fits)")
    # A board from before rows carried an identity lacks model_id: it reads (as unknown) and
    # is migrated by its next write.
    missing = [c for c in schema.key if c not in frame.columns and c not in LEGACY_KEY]
    if missing:
        raise LeaderboardError(
            f"{path} is not a robench {schema.name} leaderboard: missing columns {missing}"
        )
    return _typed(frame, schema, path)


def validate_board(path: Path) -> tuple[BoardSchema | None, list[str]]:
    """Every problem with a leaderboard file, against the schema its name or columns select."""
    try:
        frame = read_raw(path)
    except LeaderboardError as exc:
        return None, [str(exc)]
    schema = schema_for(path, frame)
    if schema is None:
        return None, [f"{path}: no leaderboard schema has these columns"]
    # A version-1 board (no schema_version column) lacks the columns version 2 added.
    version_1 = "schema_version" not in frame.columns
    problems = [
        f"missing column {c}"
        for c in schema.names
        if c not in frame.columns
        and not (version_1 and is_v2_column(c))
        and c not in IMPLIED  # a board from before the column says what it would have said
    ]
    problems += [f"unknown column {c}" for c in frame.columns if c not in schema.dtypes]
    if problems:
        return schema, problems
    try:
        typed = _typed(frame, schema, path)
    except LeaderboardError as exc:
        return schema, [str(exc)]
    duplicated = typed.duplicated(list(schema.key), keep=False)
    if duplicated.any():
        problems.append(f"{int(duplicated.sum())} rows share a key {schema.key}")
    for column in schema.percent:
        values = typed[column].dropna()
        if ((values < 0) | (values > 100)).any():
            problems.append(f"{column} has values outside [0, 100]")
    for column in schema.metrics:
        if typed[column].isna().any():
            problems.append(f"{column} is empty in {int(typed[column].isna().sum())} rows")
    if "eps" in typed and "eps_value" in typed:
        for eps, value in zip(typed["eps"], typed["eps_value"], strict=True):
            if pd.isna(value) and not _looks_numeric(str(eps)):
                continue  # a budget that is no single number (the unforeseen calibration)
            try:
                consistent = abs(parse_eps(str(eps)) - float(value)) < 1e-9
            except (ConfigError, TypeError, ValueError):
                consistent = False
            if not consistent:
                problems.append(f"eps {eps!r} does not match eps_value {value}")
                break
    return schema, problems


Warn = Callable[[str], None]


def upsert_rows(
    path: Path, rows: list[dict[str, Any]], schema: BoardSchema = PGD20, warn: Warn | None = None
) -> pd.DataFrame:
    """Insert `rows`, replacing any existing row with the same key; returns the new board.

    `warn(message)` hears of rows kept beside another model's of the same name, and of rows
    without an identity that were replaced (see the module's docstring)."""
    for row in rows:
        missing = [c for c in schema.names if c not in row]
        extra = [c for c in row if c not in schema.dtypes]
        if missing or extra:
            raise ValueError(f"{schema.name} row: missing {missing}, unknown {extra}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        if path.is_file():
            board = read_board(path, schema)
        else:
            board = _typed(pd.DataFrame(columns=list(schema.names)), schema, path)
        new = _typed(pd.DataFrame(rows, columns=list(schema.names)), schema, path)
        keys = list(schema.key)
        new_keys = set(map(tuple, new[keys].astype(str).to_numpy()))
        old_keys = board[keys].astype(str).apply(tuple, axis=1) if len(board) else None
        kept = board[~old_keys.isin(new_keys)] if old_keys is not None else board
        kept = _settle_identities(path, kept, new, schema, warn or (lambda _: None))
        merged = _typed(pd.concat([kept, new], ignore_index=True), schema, path)
        _drop_stale_temporaries(path)
        atomic_write(path, lambda tmp: _safe(merged).to_csv(tmp, index=False))
    return merged


def _settle_identities(
    path: Path, board: pd.DataFrame, new: pd.DataFrame, schema: BoardSchema, warn: Warn
) -> pd.DataFrame:
    """`board` less the legacy rows `new` supersedes; warns of name collisions."""
    if MODEL_ID not in schema.key or not len(board):
        return board
    match = list(schema.match_key)
    new_by_match = dict(zip(_tuples(new, match), new[MODEL_ID], strict=True))
    old_match = _tuples(board, match)
    legacy = _superseded_legacy(board, new, schema)
    if legacy.any():
        names = ", ".join(sorted(set(board.loc[legacy, "run"].astype(str))))
        warn(
            f"{path.name}: replaced {int(legacy.sum())} row(s) written before rows carried a "
            f"model identity or precision ({names})"
        )
    for match_key, model_id in zip(old_match[~legacy], board.loc[~legacy, MODEL_ID], strict=True):
        if match_key in new_by_match and str(model_id) != str(new_by_match[match_key]):
            warn(
                f"{path.name}: a row named {match_key[0]!r} from another model ({model_id}) is "
                f"already there; both are kept (model_id tells them apart; --name renames "
                f"an ensemble or your own model)"
            )
    return board[~legacy]


def _superseded_legacy(board: pd.DataFrame, new: pd.DataFrame, schema: BoardSchema) -> pd.Series:
    """The old rows lacking a legacy key column (no model_id, no precision) that a new row
    matches on the rest of the key: replaced, as they were before those columns were keyed."""
    legacy = [c for c in LEGACY_KEY if c in schema.key]
    missing = board[legacy].isna()
    superseded = pd.Series(False, index=board.index)
    seen: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for i in board.index[missing.any(axis=1)]:
        columns = tuple(c for c in schema.key if not (c in legacy and missing.at[i, c]))
        if columns not in seen:
            seen[columns] = set(_tuples(new, list(columns))) if len(new) else set()
        superseded[i] = tuple(str(board.at[i, c]) for c in columns) in seen[columns]
    return superseded


def _tuples(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    return frame[columns].astype(str).apply(tuple, axis=1)


def write_board(path: Path, frame: pd.DataFrame, schema: BoardSchema) -> pd.DataFrame:
    """Replace a derived board (e.g. table3.csv) as a whole, typed and under the lock."""
    typed = _typed(frame, schema, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        _drop_stale_temporaries(path)
        atomic_write(path, lambda tmp: _safe(typed).to_csv(tmp, index=False))
    return typed


def _safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula get a leading apostrophe (OWASP's
    CSV-injection advice); robench refuses such names, this catches any other text."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == "string" or out[column].dtype == object:
            values = out[column]
            risky = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_STARTS))
            if risky.any():
                out[column] = values.where(~risky, "'" + values.astype(str))
    return out


def _drop_stale_temporaries(path: Path) -> None:
    """Temporary files a killed write left beside the board (we hold its lock: none is live)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def read_raw(path: Path) -> pd.DataFrame:
    """The CSV as strings, before any schema: a one-line error if it is no CSV at all."""
    if not path.is_file():
        raise LeaderboardError(f"leaderboard {path} does not exist")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LeaderboardError(f"{path} is not a leaderboard CSV ({reason})") from None


def _typed(frame: pd.DataFrame, schema: BoardSchema, path: Path) -> pd.DataFrame:
    frame = frame.copy()
    for column, dtype in schema.dtypes.items():
        if column not in frame.columns:
            frame[column] = pd.NA
        values = frame[column]
        if values.dtype == object:
            values = values.replace("", pd.NA)
        try:
            if dtype == "boolean":
                values = values.map(_to_bool)
            elif dtype in ("float64", "Int64", "Float64"):
                values = pd.to_numeric(values, errors="raise")
            frame[column] = values.astype(dtype)
        except (ValueError, TypeError) as exc:
            raise LeaderboardError(
                f"{path}: column {column} is not {dtype} ({str(exc).splitlines()[0]})"
            ) from None
    extra = [c for c in frame.columns if c not in schema.dtypes]
    return frame[list(schema.names) + extra]


def _to_bool(value: object) -> object:
    if value is pd.NA or value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _looks_numeric(text: str) -> bool:
    try:
        parse_eps(text)
    except ConfigError:
        return False
    return True
