"""`--launcher local --jobs 2`: the DAG as subprocesses, the same boards as the sequential
run, nothing rerun, a failure reported by `robench status` with its log."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from helpers import launch_suite_toml, quiet_session, run_cli, same_boards

from robench.config import load_suite
from robench.runs import checkpoint as ckpt
from robench.workflow import reproduce

from synthetic import make_image_folder

pytestmark = pytest.mark.slow  # trains a pretraining and two runs, twice


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    data = make_image_folder(root / "data", train_per_class=8, test_per_class=4)
    (root / "suite.toml").write_text(launch_suite_toml())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each job's process will (--cpus-per-job 1)
    try:
        reproduce(quiet_session(str(data)), load_suite(root / "suite.toml"), root / "seq", None)
    finally:
        torch.set_num_threads(threads)
    return root, data


def _local(monkeypatch, capsys, root, data, out, suite="suite.toml"):
    return run_cli(monkeypatch, capsys, "reproduce", str(root / suite), "--out", str(out),
                   "--launcher", "local", "--jobs", "2", "--cpus-per-job", "1",
                   "--data-dir", str(data), "--device", "cpu")  # fmt: skip


def test_local_jobs_give_the_sequential_boards_and_rerun_nothing(setup, monkeypatch, capsys):
    root, data = setup
    out = root / "local"
    code, text, err = _local(monkeypatch, capsys, root, data, out)
    assert code == 0, err + text
    assert "4 job(s) done" in text, text
    same_boards(root / "seq" / "leaderboards", out / "leaderboards")
    # the report job rebuilt the rows from the jobs' complete flags: their cost is still there
    assert (pd.read_csv(out / "leaderboards" / "pgd20.csv")["eval_seconds"] > 0).all()
    for run in ("P1F4", "rot-P3F4"):  # the final weights too, bit for bit
        a, _ = ckpt.load_checkpoint(root / "seq" / "runs" / run / "checkpoints" / "last")
        b, _ = ckpt.load_checkpoint(out / "runs" / run / "checkpoints" / "last")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), run
    assert (out / "report.html").is_file() and (out / "launch" / "logs" / "report.log").is_file()
    code, text, err = _local(monkeypatch, capsys, root, data, out)
    assert code == 0 and "0 job(s) done, 4 done before" in text, err + text
    code, text, _ = run_cli(monkeypatch, capsys, "status", str(out))
    assert code == 0 and text.count("done") >= 4 and "2/2" in text and "1/1" in text


def test_a_failed_job_stops_its_dependants_and_status_shows_it(setup, monkeypatch, capsys):
    root, data = setup
    broken = {"finetune": "F3", "train_subset": 100000}  # more images than there are
    (root / "broken.toml").write_text(launch_suite_toml(broken=broken))
    out = root / "broken"
    code, text, err = _local(monkeypatch, capsys, root, data, out, suite="broken.toml")
    assert code == 2 and "job(s) failed: train.broken" in err, err
    assert "skipped report" in text and "done    train.P1F4" in text  # the others went on
    failed = json.loads((out / "launch" / "failed" / "train.broken.json").read_text())
    assert failed["error"].startswith("DataError: train_subset=100000")
    code, text, _ = run_cli(monkeypatch, capsys, "status", str(out))
    assert code == 0 and "failed" in text and "train_subset=100000" in text
    assert str(out / "launch" / "logs" / "train.broken.log") in "".join(text.split())
    log = (out / "launch" / "logs" / "train.broken.log").read_text()
    assert "train_subset=100000" in log
