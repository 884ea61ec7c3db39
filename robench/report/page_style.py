"""The report's inline style and script (robench/report/page.py): no external file, font or
library, so the page renders the same offline, in a CI artefact and in a mail."""

STYLE = """
:root { --ink: #222; --muted: #666; --rule: #ddd; --flag: #8a1c1c; --flag-bg: #fde8e8; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 0 1.5em 3em;
       max-width: 1400px; color: var(--ink); }
h1 { font-size: 1.6em; margin: 1em 0 .2em; }
h2 { font-size: 1.25em; margin: 0 0 .3em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .2em; }
section { border-top: 2px solid #e6e6e6; padding-top: 1em; margin-top: 2em; }
section#summary { border-top: none; margin-top: .5em; }
nav { position: sticky; top: 0; background: #fff; padding: .5em 0; z-index: 1;
      border-bottom: 1px solid var(--rule); display: flex; flex-wrap: wrap; gap: .3em 1em; }
nav a { color: #1a5fb4; text-decoration: none; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: .4em 0 .8em; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--rule); padding: 3px 10px; text-align: left;
         white-space: nowrap; }
th { background: #f4f4f4; user-select: none; }
table.board th { cursor: pointer; }
table.board th:after { content: " \\2195"; color: #aaa; }
td.num { text-align: right; } tr:hover td { background: #fafafa; }
.scroll { overflow-x: auto; max-width: 100%; }
.caption, .meta { color: var(--muted); font-size: .9em; margin: .2em 0; }
tr.flagged td { background: var(--flag-bg); color: var(--flag); }
.flag-note { color: var(--flag); font-weight: 600; }
.ok { color: #26734d; }
td.verdict { font-weight: 600; } td.holds { color: #26734d; } td.fails { color: var(--flag); }
td.open { color: var(--muted); }
.pair { display: flex; flex-wrap: wrap; gap: 1em 2em; align-items: flex-start; }
.compact { max-width: 100%; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
details { margin: .3em 0; } summary { cursor: pointer; color: #1a5fb4; }
a.download { font-weight: 600; }
code { font-size: .92em; }
"""

# Click a header to sort its table; numbers ("32.5 ± 2.9" sorts as 32.5) before text and "-".
SORT_SCRIPT = """
document.querySelectorAll("table.board th").forEach((th, col) =>
 th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
  const asc = th.dataset.asc !== "true"; th.dataset.asc = asc;
  const key = r => {
    const t = r.cells[col].innerText.replace(/^\\u26a0 /, ""), n = parseFloat(t);
    return isNaN(n) ? [1, t] : [0, n];
  };
  const cmp = (a, b) => a[0] - b[0] || (a[1] > b[1] ? 1 : a[1] < b[1] ? -1 : 0);
  rows.sort((a, b) => cmp(key(a), key(b)) * (asc ? 1 : -1));
  rows.forEach(r => body.appendChild(r));
}));
"""
