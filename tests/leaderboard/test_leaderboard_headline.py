"""The row that stands for a run, picked by protocol and never by the file's order: the
paper's eps, then the suite's own protocol, then fp32, then the most images; and the claims
and the summary use it (an eps sweep's eps 0 row has RA = TA and must never be a claim's)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from helpers import leaderboard_row, stored_pgd_row

from robench.leaderboard import upsert_rows
from robench.leaderboard.claim_rows import ClaimSources
from robench.leaderboard.claims import judge_claims
from robench.leaderboard.headline import one_row_per_run
from robench.report.summary import best_runs


def _variant(run, ra, **changes):
    row = {**leaderboard_row(run, ra=ra), "precision": "fp32", **changes}
    if "eps" in changes:
        row["eps_value"] = 0.0 if changes["eps"] == "0" else int(changes["eps"][:-4]) / 255
    return row


ROWS = [
    _variant("a", 80.0, eps="0"),  # a sweep's eps 0: RA = TA
    _variant("a", 60.0, eps="2/255"),
    _variant("a", 41.0, precision="bf16"),
    _variant("a", 45.0, overrides="steps=10"),
    _variant("a", 39.0, n_eval=20),
    _variant("a", 40.0),  # the one: 8/255, its own protocol, fp32, n = 100
    _variant("b", 70.0, eps="2/255"),  # never evaluated at 8/255: its own row stands
]


def test_the_standing_row_does_not_depend_on_the_files_order():
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(len(ROWS))
        picked = one_row_per_run(pd.DataFrame([ROWS[i] for i in order]))
        assert dict(zip(picked["run"], picked["ra"], strict=True)) == {"a": 40.0, "b": 70.0}


def test_the_summary_ranks_standing_rows_at_8_255_only():
    ranked = best_runs(pd.DataFrame(ROWS))
    assert list(zip(ranked["run"], ranked["ra"], strict=True)) == [("a", 40.0)]


def _claims_folder(tmp_path, extra):
    """rotation-P3F4 (RA 60%) and P1F4 (RA 30%) on 200 images, `extra(row)` rows first."""
    boards = tmp_path / "repro" / "leaderboards"
    rows, table3 = [], []
    for scenario, robust in (("P3F4", np.arange(200) < 120), ("P1F4", np.arange(200) < 60)):
        run = "P1F4" if scenario == "P1F4" else f"rotation-{scenario}"
        row = stored_pgd_row(tmp_path / "flags", run, robust, scenario=scenario,
                             pretext="none" if scenario == "P1F4" else "rotation")  # fmt: skip
        rows += [extra({**row, "precision": "fp32"}), {**row, "precision": "fp32"}]
        table3.append({"pretext": "rotation", "scenario": scenario, "run": run,
                       "epochs_to_best": 3})  # fmt: skip
    upsert_rows(boards / "pgd20.csv", rows)
    pd.DataFrame(table3).to_csv(boards / "table3.csv", index=False)
    claims = judge_claims(ClaimSources(tmp_path / "repro"))
    first = claims[(claims["claim"] == "a") & (claims["comparison"].str.startswith("rotation"))]
    return first["value_a"].iloc[0], first["value_b"].iloc[0]


def test_a_claim_is_judged_on_fp32_rows_beside_bf16_ones(tmp_path):
    def bf16(row):
        return {**row, "precision": "bf16", "ra": 99.0, "flag_files": ""}

    assert _claims_folder(tmp_path, bf16) == (60.0, 30.0)


def test_a_claim_is_judged_at_8_255_even_after_an_eps_sweep(tmp_path):
    def eps_0(row):  # a sweep's eps 0 row first in the file: RA = TA = 100 on both sides
        return {**row, "eps": "0", "eps_value": 0.0, "ra": 100.0, "flag_files": ""}

    assert _claims_folder(tmp_path, eps_0) == (60.0, 30.0)
