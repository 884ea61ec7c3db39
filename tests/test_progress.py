"""Progress off a terminal (SLURM, CI, nohup): a plain line every ROBENCH_PROGRESS_EVERY
seconds with done/total, img/s and ETA, from training and from evaluation alike."""

from __future__ import annotations

import re

import pytest
from helpers import assert_one_line_error, run_cli, suite_toml
from rich.console import Console

from robench.progress import EVERY_ENV, LineProgress, make_progress

from synthetic import make_image_folder

LINE = re.compile(r": (\d+)/(\d+) \((\d+)%\), (\d+) img/s, ETA (\d+:\d\d:\d\d|\?)")


def test_a_line_says_done_total_rate_and_eta(monkeypatch):
    clock = iter([0.0, 0.0, 10.0, 10.5, 20.0])
    monkeypatch.setattr("robench.progress.time.monotonic", lambda: next(clock))
    console = Console(record=True, width=60, force_terminal=False)
    progress = LineProgress(console, every=5.0)
    task = progress.add_task("run [bold]x[/bold] epoch 1/2", total=1000, info="")  # t = 0
    progress.update(task, completed=250, info="loss 1.234")  # t = 10: a line
    progress.update(task, completed=260)  # t = 10.5: too soon
    progress.update(task, completed=500)  # t = 20: a line
    lines = console.export_text().splitlines()
    assert lines == [
        "run [bold]x[/bold] epoch 1/2: 250/1000 (25%), 25 img/s, ETA 0:00:30, loss 1.234",
        "run [bold]x[/bold] epoch 1/2: 500/1000 (50%), 25 img/s, ETA 0:00:20, loss 1.234",
    ]  # the name as written (never markup), on one line however narrow the console


def test_the_terminal_keeps_its_bar_and_zero_means_no_lines(monkeypatch):
    from rich.progress import Progress

    assert isinstance(make_progress(Console(force_terminal=True)), Progress)
    monkeypatch.setenv(EVERY_ENV, "0")
    quiet = make_progress(Console(force_terminal=False))
    assert isinstance(quiet, LineProgress) and quiet.every == 0


@pytest.mark.slow
def test_training_and_a_few_hundred_image_evaluation_print_progress_lines(
    tmp_path, monkeypatch, capsys
):
    data = make_image_folder(tmp_path / "data", train_per_class=10, test_per_class=30)
    (tmp_path / "suite.toml").write_text(
        suite_toml(batch_size=10, runs={"P1F4": {"finetune": "F4"}})
    )
    monkeypatch.setenv(EVERY_ENV, "0.001")  # every update (capsys is no terminal)
    code, text, err = run_cli(monkeypatch, capsys, "train", str(tmp_path / "suite.toml"),
                              "--out", str(tmp_path / "runs"), "--data-dir", str(data),
                              "--device", "cpu")  # fmt: skip
    assert code == 0, err
    training = [m for m in map(LINE.search, text.splitlines()) if m]
    assert training and "P1F4 epoch 1/1" in text
    code, text, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path / "runs" / "P1F4"),
                              "--n", "300", "--batch-size", "20", "--data-dir", str(data),
                              "--leaderboard-dir", str(tmp_path / "boards"))  # fmt: skip
    assert code == 0, err
    found = [(line.split(":")[0], m) for line in text.splitlines() if (m := LINE.search(line))]
    labels = {label for label, _ in found}
    assert {"P1F4 clean", "P1F4 pgd"} <= labels, text  # (and the masking cross-check's)
    for label in labels:  # each evaluation counts up to its own total
        done = [int(m.group(1)) for name, m in found if name == label]
        total = {int(m.group(2)) for name, m in found if name == label}
        assert done == sorted(done) and len(total) == 1 and max(done) < total.pop()
    assert {int(m.group(2)) for name, m in found if name == "P1F4 clean"} == {300}
    monkeypatch.setenv(EVERY_ENV, "soon")
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path / "runs" / "P1F4"),
                           "--n", "20", "--seed", "1", "--data-dir", str(data),
                           "--leaderboard-dir", str(tmp_path / "boards"))  # fmt: skip
    assert_one_line_error(code, err, "ROBENCH_PROGRESS_EVERY='soon'")
