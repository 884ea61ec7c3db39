"""The report's summary and sections: which runs lead and which only seem to, how a claim's
comparisons add up, flagged rows grouped by board and flag, compact tables, figures placed in
their board's section at the size they were drawn for."""

from __future__ import annotations

import re

import pandas as pd
from helpers import REPO
from PIL import Image

from robench.report.page import report_html
from robench.report.summary import best_runs, claim_tally, flagged_rows
from robench.report.tables import compact_columns, flag_kinds


def _row(run, ra, lo, hi, eps="8/255", ta=80.0, flags=""):
    value = 0.0 if eps == "0" else int(eps.split("/")[0]) / 255
    return {"run": run, "scenario": "P3F4", "ta": ta, "ta_lo": ta - 3, "ta_hi": ta + 3,
            "ra": ra, "ra_lo": lo, "ra_hi": hi, "eps": eps, "eps_value": value,
            "flags": flags, "attack": "pgd-linf", "steps": 20, "n_eval": 1000}  # fmt: skip


def test_best_runs_rank_at_8_255_and_mark_who_the_data_cannot_separate():
    board = pd.DataFrame([
        _row("lead", 50.0, 47.0, 53.0),
        _row("close", 48.0, 45.0, 51.0),  # its interval reaches 47: not shown to be worse
        _row("behind", 40.0, 37.0, 43.0),  # below the leader's lower end
        _row("swept", 90.0, 88.0, 92.0, eps="2/255"),  # another eps: not ranked
    ])  # fmt: skip
    ranked = best_runs(board)
    assert list(ranked["run"]) == ["lead", "close", "behind"]
    assert list(ranked["tied"]) == [False, True, False]


def test_a_claim_holds_only_when_every_comparison_that_ran_holds():
    claims = pd.DataFrame(
        [("(a)", "s", "holds"), ("(a)", "s", "holds"), ("(b)", "t", "holds"),
         ("(b)", "t", "inconclusive"), ("(c)", "u", "does not hold"), ("(c)", "u", "holds"),
         ("(d)", "v", "not run"), ("(e)", "w", "holds"), ("(e)", "w", "not run")],
        columns=["claim", "statement", "verdict"],
    )  # fmt: skip
    tally = claim_tally(claims).set_index("claim")
    assert dict(tally["overall"]) == {"(a)": "holds", "(b)": "inconclusive",
                                      "(c)": "does not hold", "(d)": "not run",
                                      "(e)": "holds"}  # fmt: skip
    assert tally.loc["(b)", "verdicts"] == "1 holds, 1 inconclusive"


def test_flagged_rows_are_grouped_by_board_and_flag_with_their_row_counts():
    pgd = pd.DataFrame([
        _row("a", 1, 0, 2, flags="gradient_masking_suspected:3/64;zero_gradients:1/64"),
        _row("a", 1, 0, 2, eps="2/255", flags="gradient_masking_suspected:5/64"),
        _row("b", 1, 0, 2, flags="cross_check_off"),
        _row("c", 1, 0, 2),
    ])  # fmt: skip
    aa = pd.DataFrame([{"run": "a", "flags": "aa_warning:x"}])
    found = flagged_rows({"pgd20": pgd, "autoattack": aa})
    cells = {(r.board, r.flag): r.runs for r in found.itertuples()}
    assert cells == {("pgd20", "gradient_masking_suspected"): "a (2 rows)",
                     ("pgd20", "zero_gradients"): "a", ("pgd20", "cross_check_off"): "b",
                     ("autoattack", "aa"): "a"}  # fmt: skip
    assert flag_kinds("") == [] and flag_kinds("randomized") == ["randomized"]


def test_compact_tables_keep_identity_and_metrics_and_drop_constant_protocol():
    board = pd.read_csv(REPO / "leaderboards" / "ci" / "pgd20.csv")
    assert compact_columns(board, "pgd20") == ["run", "scenario", "ta", "ra", "worst_ra"]
    swept = pd.concat([board, board.head(1).assign(eps="2/255", eps_value=2 / 255)])
    assert "eps" in compact_columns(swept, "pgd20")  # eps varies: a column again
    table3 = pd.read_csv(REPO / "leaderboards" / "ci" / "table3.csv")
    assert compact_columns(table3, "table3")[:3] == ["pretext", "scenario", "run"]


def test_sections_hold_their_figures_at_their_drawn_size(tmp_path):
    pgd = pd.read_csv(REPO / "leaderboards" / "ci" / "pgd20.csv")
    figures = []
    for name, width in (("ta_ra", 300), ("transfer_asr", 150), ("mystery", 90)):
        Image.new("RGB", (width, 60), "white").save(tmp_path / f"{name}.png")
        figures.append(tmp_path / f"{name}.png")
    long = tmp_path / "corruptions_long.csv"
    long.write_text("run,corruption,severity,accuracy\nP1F4,fog,1,50.0\n")
    page = report_html("t", {"pgd20": pgd}, figures, [long])
    sections = re.findall(r'<section id="([^"]+)">', page)
    assert sections == ["summary", "pgd20", "corruptions", "transfer", "figures"]
    pgd_section = page.split('<section id="pgd20">')[1].split("</section>")[0]
    assert 'data-figure="ta_ra" width="200"' in pgd_section  # 300 px at 150 dpi: 2 inches
    assert 'download="pgd20.csv"' in pgd_section and "<details>" in pgd_section
    assert 'download="corruptions_long.csv"' in page.split('<section id="corruptions">')[1]
    assert "http://" not in page and "https://" not in page


def test_a_one_row_board_still_names_its_run():
    board = pd.read_csv(REPO / "leaderboards" / "external" / "autoattack.csv")
    assert len(board) == 1 and compact_columns(board, "autoattack")[0] == "run"
