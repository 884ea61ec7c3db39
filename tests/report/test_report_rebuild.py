"""`robench report DIR`: the page and every figure rebuilt from a folder's boards, run
directories and transfer CSVs; one self-contained file; bad folders are one line."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
from helpers import REPO, assert_one_line_error, run_cli
from PIL import Image


def _folder(tmp_path):
    root = tmp_path / "repro"
    (root / "leaderboards").mkdir(parents=True)
    for name in ("pgd20", "table3", "figure3"):  # real boards of the CI smoke reproduction
        shutil.copy(REPO / "leaderboards" / "ci" / f"{name}.csv", root / "leaderboards")
    shutil.copy(REPO / "leaderboards" / "ci" / "claims.csv", root / "claims.csv")
    key = {"checkpoint": "best_ta", "n_eval": 32, "seed": 0, "dataset": "cifar10",
           "corruption_source": "robench-generated (seed 0, generator v1)"}  # fmt: skip
    long = [{"run": "P1F4", "corruption": c, "severity": s, "accuracy": 80.0 - 10 * s, **key}
            for c in ("fog", "snow") for s in range(1, 6)]  # fmt: skip
    pd.DataFrame(long).to_csv(root / "leaderboards" / "corruptions_long.csv", index=False)
    run = root / "runs" / "P1F4"
    run.mkdir(parents=True)
    lines = [{"epoch": e, "train_loss": 2.0 / e, "val_ta": 20.0 + e, "val_ra": 5.0} for e in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (root / "transfer").mkdir()
    names = ["a-P3F4", "b-P3F4"]
    asr = pd.DataFrame([[0.5, 0.3], [0.2, 0.6]], index=names, columns=names)
    asr.to_csv(root / "transfer" / "transfer_asr.csv", index_label="evaluated")
    (root / "figures").mkdir()  # what reproduce drew from the data: kept, not redrawn
    Image.new("RGB", (64, 32), "gray").save(root / "figures" / "corruptions_preview.png")
    return root


def test_report_rebuilds_the_page_and_every_figure(tmp_path, monkeypatch, capsys):
    root = _folder(tmp_path)
    code, text, err = run_cli(monkeypatch, capsys, "report", str(root))
    assert code == 0, err
    drawn = {p.name for p in (root / "figures").glob("*.png")}
    assert drawn == {"ta_ra.png", "corruptions.png", "training_curves.png", "transfer_asr.png",
                     "corruptions_preview.png", "unforeseen.png"}  # fmt: skip
    page = (root / "report.html").read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == len(drawn)
    assert "http://" not in page and "https://" not in page  # opens offline
    for board in ("pgd20", "table3", "figure3", "claims"):
        assert f'<section id="{board}">' in page
    assert str(root / "report.html") in "".join(text.split())


def test_report_refuses_what_is_not_a_folder_of_boards(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "report", str(tmp_path / "missing"))
    assert_one_line_error(code, err, "is not a folder")
    code, _, err = run_cli(monkeypatch, capsys, "report", str(tmp_path))
    assert_one_line_error(code, err, "no boards")
    root = _folder(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "report", str(root), "--out", str(root))
    assert code == 2 and "Traceback" not in err
    blocker = tmp_path / "figures-is-a-file"
    (blocker / "figures").parent.mkdir()
    (blocker / "figures").write_text("not a folder")  # where the figures would go
    code, _, err = run_cli(monkeypatch, capsys, "report", str(root), "--out",
                           str(blocker / "page.html"))  # fmt: skip
    assert_one_line_error(code, err, "cannot write the report beside")


def test_report_refuses_files_that_are_not_robenchs_in_one_line(tmp_path, monkeypatch, capsys):
    root = _folder(tmp_path)
    pgd = root / "leaderboards" / "pgd20.csv"
    cases = [
        (pgd, '\x00garbage"\n,,,"\n', "is not a leaderboard CSV"),
        (pgd, "run,ta,ra\nP1F4,10,0\n", "missing columns"),
        (root / "claims.csv", "claim,verdict\na,holds\n", "claims.csv: missing columns"),
        (root / "transfer" / "transfer_asr.csv", "a,b\n1,2\n", "is not a CSV file robench"),
    ]
    for path, text, message in cases:
        kept = path.read_bytes()
        path.write_text(text)
        code, _, err = run_cli(monkeypatch, capsys, "report", str(root))
        assert_one_line_error(code, err, message)
        path.write_bytes(kept)
    # a metrics log cut short by kill -9 mid-line: the epochs before it are still drawn
    with (root / "runs" / "P1F4" / "metrics.jsonl").open("a") as log:
        log.write('{"epoch": 3, "train_lo')
    code, _, err = run_cli(monkeypatch, capsys, "report", str(root))
    assert code == 0, err
