"""The report: one self-contained HTML page that reads at a glance.

A summary on top (robench/report/summary.py), then one section per board: its figures, a
compact table, the full columns behind a toggle and the board's CSV as a download. Figures
and CSVs are embedded (base64 data URIs), styles and the few lines of sorting script are
inline: `report.html` needs nothing but a browser, opens offline, and can be mailed or
attached to a CI run as one file.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import robench
from robench.provenance import now_iso
from robench.report.figures import DPI
from robench.report.page_style import SORT_SCRIPT, STYLE
from robench.report.summary import CLAIM_COLUMNS, summary_html
from robench.report.tables import board_html, compact_columns, shown_columns


@dataclass(frozen=True)
class SectionSpec:
    title: str
    about: str = ""


# The page's sections in reading order; a section is drawn when it has a board, a figure or
# a download. Boards not named here (a RobustBench board) follow under their own names.
SECTIONS = {
    "pgd20": SectionSpec("PGD-20: clean and robust accuracy", "Every run's TA and L-inf RA."),
    "table3": SectionSpec("Table 3: pretraining x fine-tuning", "Ours beside the paper's cell."),
    "table5": SectionSpec("Table 5: ensemble pretraining"),
    "table6": SectionSpec("Table 6: fine-tuned ensembles"),
    "table7": SectionSpec("Table 7: pretraining set size"),
    "table8": SectionSpec("Table 8: random-smoothing pretraining"),
    "figure3": SectionSpec("Figure 3: unforeseen attacks", "Kang et al.'s 12 attacks."),
    "unforeseen": SectionSpec("Unforeseen attacks"),
    "autoattack": SectionSpec("AutoAttack", "AutoAttack (standard) beside PGD-20."),
    "corruptions": SectionSpec("CIFAR-10-C corruptions", "15 corruptions x 5 severities."),
    "transfer": SectionSpec("Transfer: Table 4 and Figure 5", "PGD-20 examples across models."),
    "training": SectionSpec("Training curves", "From each run's metrics.jsonl."),
    "corruption-preview": SectionSpec("Corruption preview", "One test image, every corruption."),
    "claims": SectionSpec("The paper's claims", "Paired tests, Holm-corrected."),
}

# Where each figure (by file stem) and download goes: the first of its homes that is drawn.
HOMES = {
    "ta_ra": ("pgd20",),
    "pgd20-eps-sweep": ("pgd20",),
    "unforeseen": ("figure3", "unforeseen"),
    "corruptions": ("corruptions",),
    "corruptions_long": ("corruptions",),
    "transfer_asr": ("transfer",),
    "transfer_asr_long": ("transfer",),
    "transfer_overlap": ("transfer",),
    "training_curves": ("training",),
    "corruptions_preview": ("corruption-preview",),
    "claims": ("claims",),
}
CAPTIONS = {
    "ta_ra": "Figure 1: TA against PGD-20 RA, one marker per run (area: epochs to the "
    "selected checkpoint; bars: 95% intervals).",
    "pgd20-eps-sweep": "PGD-20 RA against eps, the same images at every eps.",
    "unforeseen": "Accuracy under each unforeseen attack, one bar per run.",
    "corruptions": "Left: accuracy per corruption and severity of the run with the best mean; "
    "right: every run's mean over the 15 corruptions, per severity.",
    "transfer_asr": "Table 4: attack success rate of the PGD-20 examples crafted on one model "
    "(column) when evaluated on another (row).",
    "transfer_overlap": "Figure 5: overlap of the successful transferred examples.",
    "training_curves": "Training loss and validation TA/RA per epoch.",
    "corruptions_preview": "The first test image: clean, then 15 corruptions x severities 1-5.",
}
PROTOCOL = ("attack", "eps", "steps", "restarts", "n_eval", "seed", "dataset", "precision",
            "device", "robench_version", "git_revision", "train_suite")  # fmt: skip


@dataclass
class Section:
    key: str
    board: pd.DataFrame | None = None
    figures: list[Path] = field(default_factory=list)
    downloads: list[Path] = field(default_factory=list)

    @property
    def title(self) -> str:
        return SECTIONS[self.key].title if self.key in SECTIONS else self.key


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _download(name: str, data: bytes, what: str) -> str:
    return (
        f'<a class="download" download="{html.escape(name)}" '
        f'href="{_data_uri("text/csv", data)}">{html.escape(name)}</a> '
        f'<span class="caption">({html.escape(what)})</span>'
    )


def _css_width(png: bytes) -> int:
    """The width a figure was drawn for: its inches at 100 CSS px each (a PNG's width is in
    its IHDR chunk, bytes 16-20), so every figure's text shows at the size it was set in."""
    pixels = int.from_bytes(png[16:20], "big") if png[:8] == b"\x89PNG\r\n\x1a\n" else 0
    return round(pixels * 100 / DPI) if pixels else 0


def _figure_html(path: Path) -> str:
    caption = CAPTIONS.get(path.stem, path.stem)
    png = path.read_bytes()
    width = _css_width(png)
    size = f' width="{width}"' if width else ""
    return (
        f'<figure><img alt="{html.escape(path.stem)}" data-figure="{html.escape(path.stem)}"'
        f'{size} src="{_data_uri("image/png", png)}"><figcaption class="caption">'
        f"{html.escape(caption)}</figcaption></figure>"
    )


def _protocol(board: pd.DataFrame) -> str:
    """'attack: pgd-linf; eps: 8/255; ...': the values the board's rows were made under."""
    parts = []
    for column in PROTOCOL:
        if column in board.columns and len(board):
            ordered = board.sort_values("eps_value") if "eps_value" in board else board
            values = list(dict.fromkeys(str(v) for v in ordered[column].dropna() if str(v)))
            if values:
                parts.append(f"{column}: {', '.join(values)}")
    return html.escape("; ".join(parts))


def _compact(board: pd.DataFrame, name: str) -> list[str]:
    if name == "claims":
        return [c for c in CLAIM_COLUMNS if c in board.columns]
    return compact_columns(board, name)


def _tables_html(board: pd.DataFrame, name: str) -> tuple[str, str]:
    """(the compact table, the toggle with every shown column and the CSV download)."""
    compact, shown = _compact(board, name), shown_columns(board, name)
    more = []
    if shown != compact:
        more.append(
            f"<details><summary>All {len(shown)} columns</summary>"
            f"{board_html(board, name, shown)}</details>"
        )
    if name != "claims":  # the claims' own CSV (with every p-value) is a raw download
        csv = board.to_csv(index=False).encode()
        more.append(f"<p>{_download(f'{name}.csv', csv, f'{len(board)} rows, every column')}</p>")
    return board_html(board, name, compact), "\n".join(more)


def _section_html(section: Section) -> str:
    spec = SECTIONS.get(section.key)
    parts = [f'<section id="{html.escape(section.key)}"><h2>{html.escape(section.title)}</h2>']
    if spec and spec.about:
        parts.append(f'<p class="caption">{html.escape(spec.about)}</p>')
    board = section.board
    if board is not None and section.key != "claims":
        parts.append(f'<p class="caption protocol">{_protocol(board)}</p>')
    compact, more = _tables_html(board, section.key) if board is not None else ("", "")
    figures = "".join(map(_figure_html, section.figures))
    # the figure and the compact table side by side where the window is wide enough
    parts.append(f'<div class="pair">{figures}<div class="compact">{compact}</div></div>')
    parts.append(more)
    for path in section.downloads:
        parts.append(f"<p>{_download(path.name, path.read_bytes(), 'raw CSV')}</p>")
    return "\n".join(parts) + "</section>"


def _sections(
    boards: dict[str, pd.DataFrame], figures: list[Path], downloads: list[Path]
) -> list[Section]:
    sections = {key: Section(key, board=board) for key, board in boards.items()}

    def home(path: Path) -> Section:
        homes = HOMES.get(path.stem, ())
        key = next((h for h in homes if h in sections), homes[0] if homes else "figures")
        return sections.setdefault(key, Section(key))

    for path in figures:
        home(path).figures.append(path)
    for path in downloads:
        home(path).downloads.append(path)
    order = list(SECTIONS)
    return sorted(sections.values(), key=lambda s: order.index(s.key) if s.key in order else 99)


def report_html(
    title: str,
    boards: dict[str, pd.DataFrame],
    figures: list[Path],
    downloads: Sequence[Path] = (),
) -> str:
    """The page: summary, then a section per board with its figures and downloads."""
    sections = _sections(boards, figures, list(downloads))
    contents = "".join(
        f'<a href="#{html.escape(s.key)}">{html.escape(s.title)}</a>' for s in sections
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        f'<h1>{html.escape(title)}</h1>\n<p class="meta">robench {robench.__version__}, '
        f"written {now_iso()}. Click a column header to sort.</p>\n"
        f'<nav><a href="#summary">Summary</a>{contents}</nav>\n'
        + summary_html(boards)
        + "\n"
        + "\n".join(_section_html(s) for s in sections)
        + f"\n<script>{SORT_SCRIPT}</script>\n</body></html>\n"
    )
