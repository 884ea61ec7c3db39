"""The paper's claims judged on synthetic reproductions whose answer is known."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from helpers import assert_one_line_error, run_cli, stored_pgd_row
from statsmodels.stats.contingency_tables import mcnemar

from robench.errors import RobenchError
from robench.leaderboard.claim_rows import ClaimSources
from robench.leaderboard.claims import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_RUN,
    claims_for_report,
    judge_claims,
    write_claims,
)
from robench.leaderboard.store import upsert_rows

N = 200


def reproduction(tmp_path, cells: dict[tuple[str, str], np.ndarray], *, flags: bool = True):
    """DIR/leaderboards/ with pgd20.csv (rows from `cells`' flags) and table3.csv."""
    boards = tmp_path / "repro" / "leaderboards"
    rows, table3 = [], []
    for (pretext, scenario), robust in cells.items():
        run = scenario if scenario.startswith("P1") else f"{pretext}-{scenario}"
        row = stored_pgd_row(tmp_path / "flags", run, robust, scenario=scenario, pretext=pretext)
        if not flags:
            row["flag_files"] = ""
        if run not in {r["run"] for r in rows}:
            rows.append(row)
        table3.append(
            {"pretext": pretext, "scenario": scenario, "run": run, "ra": row["ra"],
             "epochs_to_best": 5 if scenario == "P1F4" else 3, "ra_paper": 50.0}
        )  # fmt: skip
    upsert_rows(boards / "pgd20.csv", rows)
    pd.DataFrame(table3).to_csv(boards / "table3.csv", index=False)
    return tmp_path / "repro"


def flags(rate: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(N) < rate


def verdicts(frame: pd.DataFrame, claim: str) -> dict[str, str]:
    rows = frame[frame["claim"] == claim]
    return dict(zip(rows["comparison"], rows["verdict"], strict=True))


def test_a_real_gap_holds_and_missing_runs_are_not_run(tmp_path):
    strong, weak = flags(0.6, 1), flags(0.3, 2)
    folder = reproduction(tmp_path, {("rotation", "P3F4"): strong, ("rotation", "P1F4"): weak})
    frame = judge_claims(ClaimSources(folder))
    a = verdicts(frame, "a")
    assert a["rotation: P3F4 vs P1F4"] == HOLDS
    assert a["selfie: P3F4 vs P1F4"] == NOT_RUN and a["jigsaw: P3F4 vs P1F4"] == NOT_RUN
    row = frame[frame["comparison"] == "rotation: P3F4 vs P1F4"].iloc[0]
    b, c = int(np.sum(strong & ~weak)), int(np.sum(~strong & weak))
    assert row["discordant"] == f"{b}/{c}"
    assert row["p"] == pytest.approx(mcnemar([[0, b], [c, 0]], exact=True).pvalue)
    assert row["diff"] == pytest.approx(100 * (strong.mean() - weak.mean()))
    assert row["diff_lo"] < row["diff"] < row["diff_hi"]
    assert row["test"].startswith("exact McNemar")
    # (b): one pretext's epochs cannot be significant (sign test of 1 pair: p = 1).
    assert verdicts(frame, "b") == {"P3F4 vs P1F4, per pretext": INCONCLUSIVE}
    # every claim has a row, in order, and those without runs say so
    assert list(dict.fromkeys(frame["claim"])) == list("abcdefg")
    assert set(verdicts(frame, "d").values()) == {NOT_RUN}
    assert set(verdicts(frame, "f").values()) == {NOT_RUN}


def test_no_gap_is_inconclusive_and_a_reversed_one_does_not_hold(tmp_path):
    same = flags(0.4, 3)
    folder = reproduction(
        tmp_path,
        {
            ("rotation", "P3F4"): same,
            ("rotation", "P1F4"): same,
            ("jigsaw", "P3F4"): flags(0.1, 4),
            ("jigsaw", "P1F4"): same,
        },
    )
    a = verdicts(judge_claims(ClaimSources(folder)), "a")
    assert a["rotation: P3F4 vs P1F4"] == INCONCLUSIVE
    assert a["jigsaw: P3F4 vs P1F4"] == FAILS


def test_holm_correction_can_turn_a_nominal_result_inconclusive(tmp_path):
    """A gap with p just under 0.05 holds alone, not among several tests of one family."""
    base = np.zeros(N, dtype=bool)
    better = base.copy()
    better[:9] = True  # 9 discordant pairs, all one way: p = 2 / 2^9 = 0.0039
    cells = {("rotation", "P3F4"): better, ("rotation", "P1F4"): base}
    alone = judge_claims(ClaimSources(reproduction(tmp_path / "one", cells)))
    row = alone[alone["comparison"] == "rotation: P3F4 vs P1F4"].iloc[0]
    assert row["p"] == pytest.approx(2 / 2**9) and row["verdict"] == HOLDS
    # ... with 13 other tests (P3F2/P3F3, P2F3 cells) in the family, Holm multiplies it.
    for scenario in ("P3F2", "P3F3", "P2F3", "P1F3"):
        cells[("rotation", scenario)] = base
    family = judge_claims(ClaimSources(reproduction(tmp_path / "many", cells)))
    row = family[family["comparison"] == "rotation: P3F4 vs P1F4"].iloc[0]
    assert row["p_holm"] > row["p"]


def test_equivalence_claim_g(tmp_path):
    zero = np.zeros(2000, dtype=bool)
    folder = reproduction(tmp_path, {("rotation", "P2F3"): zero, ("rotation", "P1F3"): zero})
    g = verdicts(judge_claims(ClaimSources(folder)), "g")
    assert g["rotation: P2F3 vs P1F3"] == HOLDS  # both 0 % on 2000 images: within 2 points
    small = reproduction(
        tmp_path / "small", {("rotation", "P2F3"): zero[:64], ("rotation", "P1F3"): zero[:64]}
    )
    g = verdicts(judge_claims(ClaimSources(small)), "g")
    assert g["rotation: P2F3 vs P1F3"] == INCONCLUSIVE  # 64 images cannot tell 2 points


def test_without_stored_flags_the_counts_are_tested(tmp_path):
    folder = reproduction(
        tmp_path,
        {("rotation", "P3F4"): flags(0.6, 1), ("rotation", "P1F4"): flags(0.3, 2)},
        flags=False,
    )
    frame = judge_claims(ClaimSources(folder))
    row = frame[frame["comparison"] == "rotation: P3F4 vs P1F4"].iloc[0]
    assert row["test"].startswith("Fisher") and "no stored flags" in row["note"]
    assert row["verdict"] == HOLDS


def test_claims_cli_writes_the_csv_and_refuses_bad_folders(monkeypatch, capsys, tmp_path):
    folder = reproduction(
        tmp_path, {("rotation", "P3F4"): flags(0.6, 1), ("rotation", "P1F4"): flags(0.3, 2)}
    )
    code, out, _ = run_cli(monkeypatch, capsys, "claims", str(folder))
    assert code == 0 and "holds" in out and "Holm" in out
    written = pd.read_csv(folder / "claims.csv")
    assert set(written["verdict"]) >= {HOLDS, NOT_RUN}
    assert len(claims_for_report(written)) == len(written)
    code, _, err = run_cli(monkeypatch, capsys, "claims", str(tmp_path / "nope"))
    assert_one_line_error(code, err, "not a directory")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RobenchError, match=r"no pgd20\.csv"):
        write_claims(tmp_path / "empty")


def test_moved_or_corrupted_flags_fall_back_to_the_counts(tmp_path):
    folder = reproduction(
        tmp_path, {("rotation", "P3F4"): flags(0.6, 1), ("rotation", "P1F4"): flags(0.3, 2)}
    )
    for sidecar in (tmp_path / "flags" / "rotation-P3F4").glob("*.json"):
        sidecar.write_text("{not json")  # corrupted
    shutil.rmtree(tmp_path / "flags" / "P1F4")  # moved away
    row = judge_claims(ClaimSources(folder)).iloc[1]
    assert row["comparison"] == "rotation: P3F4 vs P1F4"
    assert row["test"].startswith("Fisher") and row["verdict"] == HOLDS
