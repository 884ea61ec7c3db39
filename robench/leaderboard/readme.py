"""leaderboards/README.md's column tables, generated from the schemas (`SCHEMAS`).

The prose of each board's section is written by hand; its "Key: ... Compared by `diff`: ..."
line and its column table come from the board's schema, so the documentation cannot drift
from the columns robench writes. `python -m robench.leaderboard.readme` rewrites the file in
place; tests/leaderboard check that it is up to date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from robench.columns import BoardSchema
from robench.leaderboard.schema import SCHEMAS

README = Path(__file__).resolve().parents[2] / "leaderboards" / "README.md"
_SECTION = re.compile(r"^## `([A-Za-z0-9_-]+)\.csv`\n", re.MULTILINE)


def schema_block(schema: BoardSchema) -> str:
    """The generated part of a board's section: its key, compared metrics and columns."""
    key = ", ".join(f"`{c}`" for c in schema.key)
    compared = ", ".join(f"`{c}`" for c in schema.metrics)
    lines = [f"Key: {key}. Compared by `diff`: {compared}.", "", "| column | type | meaning |"]
    lines.append("|---|---|---|")
    intervals = set(schema.intervals)
    for c in schema.columns:
        if c.name.endswith(("_lo", "_hi")) and c.name[:-3] in intervals:
            continue  # said once, below the metrics
        lines.append(f"| `{c.name}` | {c.dtype} | {c.doc} |")
    if intervals:
        names = ", ".join(f"`{m}`" for m in schema.intervals)
        lines.append(
            f"| `<metric>_lo`, `<metric>_hi` | float64 | the 95% Wilson interval of each of "
            f"{names}, %; beside its metric in the file |"
        )
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """`text` with every board section's generated block replaced by the schema's."""
    out, last = [], 0
    matches = list(_SECTION.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end]
        start = body.find("Key: ")
        table_end = _table_end(body, start)
        schema = SCHEMAS.get(match.group(1))
        if schema is None or start < 0:
            continue
        out.append(text[last : match.end()] + body[:start] + schema_block(schema))
        last = match.end() + table_end
    out.append(text[last:])
    return "".join(out)


def _table_end(body: str, start: int) -> int:
    """Where the generated block (key line, blank line, table rows) ends within `body`."""
    lines = body[start:].split("\n")
    count = 2  # the key line and the blank line after it
    while count < len(lines) and lines[count].startswith("|"):
        count += 1
    return start + len("\n".join(lines[:count])) + 1


def missing_sections(text: str) -> list[str]:
    documented = set(_SECTION.findall(text))
    return sorted(name for name in SCHEMAS if name not in documented)


if __name__ == "__main__":
    current = README.read_text()
    updated = render(current)
    README.write_text(updated)
    print(f"{README}: {'updated' if updated != current else 'already up to date'}")
    missing = missing_sections(updated)
    if missing:
        sys.exit(f"no section for {', '.join(missing)}: add '## `NAME.csv`' with a Key: line")
