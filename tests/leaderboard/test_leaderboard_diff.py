"""`robench leaderboard validate` and `diff`: the exit codes CI relies on."""

import pytest
from helpers import REPO, leaderboard_row, run_cli

from robench.leaderboard import upsert_rows, validate_board


@pytest.fixture
def boards(tmp_path):
    base, new = tmp_path / "base" / "pgd20.csv", tmp_path / "new" / "pgd20.csv"
    rows = [leaderboard_row("a", 40.0), leaderboard_row("b", 30.0)]
    upsert_rows(base, rows)
    upsert_rows(new, rows)
    return base, new


def test_identical_files_exit_0(monkeypatch, capsys, boards):
    code, out, _ = run_cli(monkeypatch, capsys, "leaderboard", "diff", *map(str, boards))
    assert code == 0 and "OK" in out and "2 unchanged" in out


def test_a_move_within_tolerance_is_reported_but_passes(monkeypatch, capsys, boards):
    base, new = boards
    upsert_rows(new, [leaderboard_row("a", 40.4)])
    code, out, _ = run_cli(monkeypatch, capsys, "leaderboard", "diff", str(base), str(new))
    assert code == 0 and "+0.40" in out


def test_ra_moving_beyond_tolerance_exits_1(monkeypatch, capsys, boards):
    base, new = boards
    upsert_rows(new, [leaderboard_row("a", 41.0)])
    code, out, _ = run_cli(
        monkeypatch, capsys, "leaderboard", "diff", str(base), str(new), "--tol", "0.5"
    )
    assert code == 1 and "+1.00" in out and "FAIL" in out
    code, _, _ = run_cli(
        monkeypatch, capsys, "leaderboard", "diff", str(base), str(new), "--tol", "2"
    )
    assert code == 0


def test_a_dropped_row_exits_1_and_a_new_one_does_not(monkeypatch, capsys, tmp_path, boards):
    base, _ = boards
    fewer = tmp_path / "fewer" / "pgd20.csv"
    upsert_rows(fewer, [leaderboard_row("a", 40.0)])
    code, out, _ = run_cli(monkeypatch, capsys, "leaderboard", "diff", str(base), str(fewer))
    assert code == 1 and "disappeared" in out
    code, out, _ = run_cli(monkeypatch, capsys, "leaderboard", "diff", str(fewer), str(base))
    assert code == 0 and "appeared" in out


def test_markdown_format(monkeypatch, capsys, boards):
    base, new = boards
    upsert_rows(new, [leaderboard_row("b", 25.0)])
    code, out, _ = run_cli(
        monkeypatch, capsys, "leaderboard", "diff", str(base), str(new), "--format", "md"
    )
    assert code == 1
    assert out.startswith("### leaderboard diff (pgd20): FAIL")
    assert "| b |" in out and "-5.00" in out and "**beyond tolerance**" in out


@pytest.mark.parametrize(
    "content",
    ["", 'run,suite\n"unterminated\n', "not,a,leaderboard\n1,2,3\n"],
)
def test_malformed_input_exits_2(monkeypatch, capsys, tmp_path, boards, content):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    code, _, err = run_cli(monkeypatch, capsys, "leaderboard", "diff", str(boards[0]), str(bad))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_schema_invalid_input_exits_2(monkeypatch, capsys, tmp_path, boards):
    bad = tmp_path / "pgd20.csv"
    text = boards[0].read_text().replace(",40.0,", ",forty,")
    bad.write_text(text)
    code, _, err = run_cli(monkeypatch, capsys, "leaderboard", "diff", str(boards[0]), str(bad))
    assert code == 2 and "column ra is not float64" in err


def test_validate(monkeypatch, capsys, tmp_path, boards):
    code, out, _ = run_cli(monkeypatch, capsys, "leaderboard", "validate", str(boards[0]))
    assert code == 0 and "valid" in out
    broken = tmp_path / "pgd20.csv"
    broken.write_text(boards[0].read_text().replace(",40.0,", ",140.0,"))
    schema, problems = validate_board(broken)
    assert schema.name == "pgd20" and any("outside [0, 100]" in p for p in problems)
    code, out, _ = run_cli(monkeypatch, capsys, "leaderboard", "validate", str(broken))
    assert code == 1 and "invalid" in out


def test_a_version_1_board_still_validates_and_reads(monkeypatch, capsys, tmp_path, boards):
    """A board from before intervals, precision and flag pointers (and model_id) is valid;
    one that lacks any other column is not."""
    import pandas as pd

    from robench.columns import is_v2_column
    from robench.leaderboard import read_board

    frame = pd.read_csv(boards[0])
    old = tmp_path / "old" / "pgd20.csv"
    old.parent.mkdir()
    frame[[c for c in frame.columns if not is_v2_column(c)]].to_csv(old, index=False)
    code, out, _ = run_cli(monkeypatch, capsys, "leaderboard", "validate", str(old))
    assert code == 0 and "format version 1" in out
    assert read_board(old)["ra_lo"].isna().all()  # it reads, with no interval
    frame.drop(columns=["ra_lo"]).to_csv(old, index=False)  # version 2 without an interval
    assert "missing column ra_lo" in validate_board(old)[1]
    frame.drop(columns=["schema_version", "steps"]).to_csv(old, index=False)
    assert "missing column steps" in validate_board(old)[1]
    frame.drop(columns=["norm"]).to_csv(old, index=False)  # before L2: L-inf, still valid
    assert validate_board(old)[1] == []


def test_readme_documents_every_column():
    from robench.leaderboard import SCHEMAS
    from robench.leaderboard.readme import missing_sections, render

    readme = (REPO / "leaderboards" / "README.md").read_text()
    assert not missing_sections(readme)
    assert render(readme) == readme, "run: python -m robench.leaderboard.readme"
    for schema in SCHEMAS.values():
        for column in schema.names:
            if column.endswith(("_lo", "_hi")) and column[:-3] in schema.intervals:
                column = column[:-3]  # documented as `<metric>_lo`, `<metric>_hi` of it
            assert f"`{column}`" in readme, f"{schema.name}.{column} is not documented"
