"""`robench eval RUN --suite pgd20 --eps-sweep 0,2/255,8/255`: one row per eps on the same
images, RA at eps 0 equal to TA, resumable (a rerun computes nothing), and the curve drawn."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import assert_one_line_error, run_cli, suite_toml

from synthetic import make_image_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from rich.console import Console

    from robench.config import load_suite
    from robench.session import Session
    from robench.workflow import train

    root = tmp_path_factory.mktemp("sweep")
    data = make_image_folder(root / "data", train_per_class=8, test_per_class=4)
    (root / "suite.toml").write_text(suite_toml(runs={"P1F4": {"finetune": "F4"}}))
    session = Session.start("cpu", console=Console(quiet=True), data_dir=str(data))
    train(session, load_suite(root / "suite.toml"), root / "runs", None)
    return root / "runs" / "P1F4", data


def _sweep(monkeypatch, capsys, run, data, boards, *extra):
    return run_cli(monkeypatch, capsys, "eval", str(run), "--suite", "pgd20", "--n", "30",
                   "--data-dir", str(data), "--leaderboard-dir", str(boards), "--device", "cpu",
                   *extra)  # fmt: skip


def test_an_eps_sweep_gives_a_row_per_eps_and_the_curve(run, monkeypatch, capsys, tmp_path):
    folder, data = run
    boards = tmp_path / "boards"
    code, text, err = _sweep(monkeypatch, capsys, folder, data, boards,
                             "--eps-sweep", "0,2/255,8/255,16/255")  # fmt: skip
    assert code == 0, err
    rows = pd.read_csv(boards / "pgd20.csv").set_index("eps")
    assert list(rows.index) == ["0", "2/255", "8/255", "16/255"]
    assert (rows["n_eval"] == 30).all() and rows["ta"].nunique() == 1  # the same images
    assert rows.loc["0", "ra"] == rows.loc["0", "ta"]  # the attack cannot move
    assert rows.loc["16/255", "ra"] <= rows.loc["2/255", "ra"] <= rows.loc["0", "ra"]
    assert rows.loc["16/255", "ra"] < rows.loc["0", "ra"]  # the sweep measured something
    picture = boards / "pgd20-eps-sweep.png"
    assert picture.is_file() and picture.stat().st_size > 5000
    assert str(picture) in "".join(text.split())  # the path, printed (however wrapped)
    # resumable: a rerun finds every eps's flags complete and rewrites the same numbers
    before = rows[["ta", "ra"]]
    flags = sorted((boards / ".eval-state").rglob("*.npz")) or sorted(folder.glob("eval/*.npz"))
    stamps = {p: p.stat().st_mtime_ns for p in flags}
    code, _, err = _sweep(monkeypatch, capsys, folder, data, boards,
                          "--eps-sweep", "0,2/255,8/255,16/255")  # fmt: skip
    assert code == 0, err
    after = pd.read_csv(boards / "pgd20.csv").set_index("eps")[["ta", "ra"]]
    pd.testing.assert_frame_equal(before, after)
    assert stamps and all(p.stat().st_mtime_ns == t for p, t in stamps.items())


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--eps-sweep", "0,abc"), "eps 'abc' is not a number"),
        (("--eps-sweep", "0,2/255", "--eps", "4/255"), "--eps-sweep replaces --eps"),
        (("--eps-sweep", "2/255,2/255"), "gives an eps twice"),
        (("--eps-sweep", "0,2/255", "--suite", "corruptions"), "takes no eps"),
        (("--eps-sweep", "0,3/2"), "outside [0, 1]"),
    ],
)
def test_a_bad_sweep_is_one_line(run, monkeypatch, capsys, tmp_path, extra, needle):
    folder, data = run
    code, _, err = _sweep(monkeypatch, capsys, folder, data, tmp_path / "boards", *extra)
    assert_one_line_error(code, err, needle)
