"""The report in a real browser (headless Chromium): it loads without an error, every figure
decodes and shows in its section, the summary comes first, sorting, toggles and downloads
work, nothing is fetched from outside the file and no run name runs as markup. Screenshots go
to the test artefacts folder (tests/chromium.py).

The first test builds a folder with every kind of board from the committed smoke boards. The
other two judge a real `robench reproduce smoke` folder; .ci/leaderboards.sh runs them on the
reproduction it has just diffed (ROBENCH_SMOKE_REPORT), after which the second evaluates
corruptions and an eps sweep there through the CLI and rebuilds the page with `robench report`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from chromium import rendered
from helpers import REPO, run_cli
from PIL import Image

pytestmark = pytest.mark.browser

EVERY_FIGURE = {"ta_ra": "pgd20", "pgd20-eps-sweep": "pgd20", "unforeseen": "figure3",
                "corruptions": "corruptions", "transfer_asr": "transfer",
                "transfer_overlap": "transfer", "training_curves": "training",
                "corruptions_preview": "corruption-preview"}  # fmt: skip
CORRUPTION_KEY = {"checkpoint": "best_ta", "n_eval": 32, "seed": 0, "dataset": "cifar10",
                  "corruption_source": "robench-generated (seed 0, generator v1)"}  # fmt: skip
HOSTILE = "<img src=x onerror=alert(1)>$x$"  # a run name that would run if read as markup


def _sweep_and_flags(pgd: pd.DataFrame) -> pd.DataFrame:
    """The smoke board plus an eps sweep of two runs, one flagged row and a hostile name."""
    extra = []
    for run in ("P1F4", "selfie-P3F4"):
        base = pgd[pgd["run"] == run].iloc[0]
        for eps, ra in (("0", base["ta"]), ("2/255", 6.0), ("4/255", 3.0), ("16/255", 0.0)):
            value = 0.0 if eps == "0" else int(eps.split("/")[0]) / 255
            extra.append({**base, "eps": eps, "eps_value": value, "ra": ra,
                          "ra_lo": max(ra - 5, 0), "ra_hi": min(ra + 5, 100)})  # fmt: skip
    hostile = {**pgd[pgd["run"] == "P1F3"].iloc[0], "run": HOSTILE}
    board = pd.concat([pgd, pd.DataFrame(extra), pd.DataFrame([hostile])], ignore_index=True)
    flagged = (board["run"] == "selfie-P3F4") & (board["eps"] == "8/255")
    board["flags"] = board["flags"].astype(object)
    board.loc[flagged, "flags"] = "gradient_masking_suspected:3/64"
    return board


def _every_board(tmp_path: Path) -> Path:
    root = tmp_path / "repro"
    boards = root / "leaderboards"
    boards.mkdir(parents=True)
    for name in ("table3", "table5", "table6", "table7", "table8", "figure3"):
        shutil.copy(REPO / "leaderboards" / "ci" / f"{name}.csv", boards)
    shutil.copy(REPO / "leaderboards" / "ci" / "claims.csv", root / "claims.csv")
    _sweep_and_flags(pd.read_csv(REPO / "leaderboards" / "ci" / "pgd20.csv")).to_csv(
        boards / "pgd20.csv", index=False
    )
    long = [{"run": r, "corruption": c, "severity": s, "accuracy": 60.0 - 9 * s + i,
             "accuracy_lo": 50.0 - 9 * s, "accuracy_hi": 70.0 - 9 * s, **CORRUPTION_KEY}
            for i, r in enumerate(("P1F4", "selfie-P3F4"))
            for c in ("fog", "snow", "glass_blur") for s in range(1, 6)]  # fmt: skip
    pd.DataFrame(long).to_csv(boards / "corruptions_long.csv", index=False)
    wide = [{"run": r, "scenario": r[-4:], "ta": 20.0, "ta_lo": 12.0, "ta_hi": 30.0, "mean": m,
             "mean_lo": m - 8, "mean_hi": m + 8, "suite": "corruptions", **CORRUPTION_KEY}
            for r, m in (("P1F4", 33.0), ("selfie-P3F4", 34.0))]  # fmt: skip
    pd.DataFrame(wide).to_csv(boards / "corruptions.csv", index=False)
    for run in ("P1F4", "selfie-P3F4"):
        (root / "runs" / run).mkdir(parents=True)
        lines = [{"epoch": e, "train_loss": 2.3 / e, "val_ta": 10.0 * e, "val_ra": 2.0 * e}
                 for e in (1, 2, 3)]  # fmt: skip
        (root / "runs" / run / "metrics.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in lines)
        )
    (root / "transfer").mkdir()
    names = ["selfie-P3F4", "rotation-P3F4"]
    asr = pd.DataFrame([[1.0, 0.6], [0.5, 1.0]], index=names, columns=names)
    asr.to_csv(root / "transfer" / "transfer_asr.csv", index_label="evaluated")
    overlap = [{"source": a, "target_a": a, "target_b": b, "only_a": 0.1, "only_b": 0.2,
                "both": 0.5, "neither": 0.2, "n": 64} for a, b in (names, names[::-1])]  # fmt: skip
    pd.DataFrame(overlap).to_csv(root / "transfer" / "transfer_overlap.csv", index=False)
    (root / "figures").mkdir()
    Image.new("RGB", (300, 400), "gray").save(root / "figures" / "corruptions_preview.png")
    return root


def _assert_reads_at_a_glance(seen, figures: dict[str, str]) -> None:
    """No error, nothing fetched, every figure decoded and shown in its section, the summary
    above every board."""
    assert seen.errors == [] and seen.dialogs == []
    assert all(url.startswith(("file:", "data:")) for url in seen.requests), seen.requests
    images = {i["figure"]: i for i in seen.images()}
    assert set(images) == set(figures)
    for name, section in figures.items():
        image = images[name]
        assert image["complete"] and image["natural"] > 0 and image["shown"] > 100, image
        assert image["section"] == section, image
    summary = seen.top_of("#summary")
    assert summary < 900  # in the first screen
    assert all(summary < seen.top_of(f"#{s}") for s in set(figures.values()))
    assert seen.page.locator("#summary h3", has_text="Best runs").is_visible()


def test_every_figure_in_chromium(tmp_path, monkeypatch, capsys):
    root = _every_board(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "report", str(root))
    assert code == 0, err
    with rendered(root / "report.html", "report-every-figure.png") as seen:
        _assert_reads_at_a_glance(seen, EVERY_FIGURE)
        page = seen.page
        # the hostile name is text in the table, not an element
        assert page.locator("#pgd20 td", has_text=HOSTILE).count() >= 1
        assert page.locator("img:not([data-figure])").count() == 0
        # the flagged row is named in the summary and marked in its board
        flagged = page.locator("#summary .flagged-list li")
        assert flagged.count() == 1 and "selfie-P3F4" in flagged.inner_text()
        assert "gradient_masking_suspected" in flagged.inner_text()
        assert page.locator("#pgd20 .compact tr.flagged").count() == 1
        # sorting: click "ra" in the compact pgd20 table twice -> the highest RA first
        table = page.locator("#pgd20 .compact table")
        header = table.locator("th", has_text=re.compile(r"^ra\b"))
        header.click()
        header.click()
        first = table.locator("tbody tr").first.locator("td").nth(3).inner_text()
        ras = pd.read_csv(root / "leaderboards" / "pgd20.csv")["ra"]
        assert float(first.split()[0]) == pytest.approx(ras.max(), abs=0.01)
        # full columns behind a toggle, closed until clicked
        details = page.locator("#pgd20 details")
        assert not details.locator("table").is_visible()
        details.locator("summary").click()
        assert details.locator("th", has_text="n_eval").is_visible()
        # the long board is a download, and it is the CSV itself
        link = page.locator("#corruptions a[download='corruptions_long.csv']")
        with page.expect_download() as download:
            link.click()
        saved = pd.read_csv(download.value.path())
        assert len(saved) == len(pd.read_csv(root / "leaderboards" / "corruptions_long.csv"))
    assert (Path(os.environ.get("ROBENCH_TEST_ARTIFACTS") or REPO / "test-artifacts")
            / "report-every-figure.png").stat().st_size > 10_000  # fmt: skip


SMOKE_FIGURES = {k: v for k, v in EVERY_FIGURE.items()
                 if k not in ("pgd20-eps-sweep", "corruptions")}  # fmt: skip


def _smoke_report() -> Path:
    value = os.environ.get("ROBENCH_SMOKE_REPORT")
    if not value:
        pytest.skip("ROBENCH_SMOKE_REPORT: the report of a `robench reproduce smoke` (CI sets it)")
    return Path(value)


def test_smoke_reproduction_report_in_chromium():
    report = _smoke_report()
    with rendered(report, "report-smoke.png") as seen:
        _assert_reads_at_a_glance(seen, SMOKE_FIGURES)
        assert seen.page.locator("#summary td.verdict").count() == 7  # claims (a)-(g)
        assert seen.page.locator("#claims .compact tbody tr").count() >= 7


def test_smoke_reproduction_with_sweep_and_corruptions(monkeypatch, capsys):
    root = _smoke_report().parent
    boards, runs = root / "leaderboards", [str(root / "runs" / r) for r in ("P1F4", "selfie-P3F4")]
    for extra in (["--suite", "corruptions", "--n", "32"],
                  ["--eps-sweep", "0,2/255,4/255,8/255,16/255"]):  # fmt: skip
        code, _, err = run_cli(monkeypatch, capsys, "eval", *runs, *extra,
                               "--leaderboard-dir", str(boards))  # fmt: skip
        assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "report", str(root))
    assert code == 0, err
    with rendered(root / "report.html", "report-smoke-every-figure.png") as seen:
        _assert_reads_at_a_glance(seen, EVERY_FIGURE)
    page = (root / "report.html").read_text()
    encoded = re.search(
        r'download="corruptions_long.csv" href="data:text/csv;base64,([^"]+)"', page
    )
    rows = base64.b64decode(encoded.group(1)).decode().splitlines()
    assert len(rows) == 1 + 2 * 15 * 5  # header, 2 runs x 15 corruptions x 5 severities
