"""`robench leaderboard render`: markdown and a self-contained HTML page."""

from html.parser import HTMLParser

import pytest
from helpers import leaderboard_row, run_cli

from robench.leaderboard import upsert_rows


@pytest.fixture
def board(tmp_path):
    path = tmp_path / "pgd20.csv"
    upsert_rows(path, [leaderboard_row("a", 40.0), leaderboard_row("b|pipe", 30.0)])
    return path


def test_markdown(monkeypatch, capsys, board):
    code, out, _ = run_cli(
        monkeypatch, capsys, "leaderboard", "render", str(board), "--format", "md"
    )
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("| run | pretext | scenario")
    assert len(lines) == 4 and "| 40.00 |" in lines[2] and "b\\|pipe" in out


def test_html_is_self_contained_and_sortable(monkeypatch, capsys, board, tmp_path):
    out_file = tmp_path / "page.html"
    code, _, _ = run_cli(
        monkeypatch,
        capsys,
        "leaderboard",
        "render",
        str(board),
        "--format",
        "html",
        "--out",
        str(out_file),
    )
    page = out_file.read_text()
    assert code == 0 and page.startswith("<!doctype html>")
    assert "<script>" in page and "addEventListener" in page  # sorting, inline
    assert "http" not in page.split("<script>")[0].replace("http-equiv", "")  # nothing fetched

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells = []

        def handle_data(self, data):
            self.cells.append(data)

    parser = Cells()
    parser.feed(page)
    assert "40.00" in parser.cells and "b|pipe" in parser.cells


def test_ours_and_robustbench_s_published_entries_on_one_page(monkeypatch, capsys, board, tmp_path):
    published = tmp_path / "robustbench-linf.csv"
    code, _, _ = run_cli(monkeypatch, capsys, "leaderboard", "robustbench", "--out", str(published))
    assert code == 0
    code, out, _ = run_cli(monkeypatch, capsys, "leaderboard", "render", str(board),
                           str(published), "--format", "md")  # fmt: skip
    assert code == 0 and "## pgd20" in out and "## robustbench-linf" in out
    ours, theirs = out.split("## robustbench-linf")
    assert "published_ta" not in ours  # no zoo model among ours: no column of dashes
    # the reference board is known by its columns under another name: its shown columns
    assert theirs.strip().splitlines()[0] == (
        "| model_name | threat_model | clean_acc | autoattack_acc | architecture | venue |"
    )
    assert "| Standard | Linf | 94.78 | 0.00 |" in theirs
