"""A hostile user at the command line (issue #18, sections 2-9): one line and exit 2, or the
right thing, and never a traceback, a silently wrong file or a formula in a board.

Each test is one case class: rows replaced by another model's, user text read as markup,
output paths discovered too late, negative seeds, records and checkpoints that lie, model
files that exit, typos that would train the wrong thing, a CI gate that can be waved
through, CSV injection, killed writes, symlinked boards, signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import pandas as pd
import pytest
import torch
from helpers import REPO, assert_one_line_error, leaderboard_row, run_cli, suite_toml

from robench.eval.user_model import load_state_dict_file
from robench.leaderboard import PGD20, upsert_rows
from robench.models import create
from robench.report.tables import board_markdown
from robench.runs import RunDir
from robench.runs import checkpoint as ckpt

from synthetic import make_image_folder

SUITE = suite_toml()
CI_PGD20 = REPO / "leaderboards" / "ci" / "pgd20.csv"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"), train_per_class=20)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, folder):
    """P1F3 and P1F4 of the tiny suite, trained once for the module."""
    root = tmp_path_factory.mktemp("red")
    (root / "suite.toml").write_text(SUITE)
    mp = pytest.MonkeyPatch()
    argv = ["robench", "train", str(root / "suite.toml"), "--out", str(root / "runs")]
    mp.setattr(sys, "argv", [*argv, "--data-dir", str(folder), "--device", "cpu"])
    from robench.cli import main

    with pytest.raises(SystemExit) as info:
        main()
    mp.undo()
    assert info.value.code in (0, None)
    return root / "runs"


def _eval(monkeypatch, capsys, folder, *args):
    return run_cli(monkeypatch, capsys, "eval", *args, "--data-dir", str(folder), "--device",
                   "cpu", "--n", "8")  # fmt: skip


# -- 4. user text is never markup ------------------------------------------------------------


@pytest.mark.slow
def test_markup_in_paths_and_names_is_printed_as_it_is(monkeypatch, capsys, runs, folder, tmp_path):
    boards = tmp_path / "b[/x]"
    code, out, err = _eval(monkeypatch, capsys, folder, str(runs / "P1F3"),
                           "--leaderboard-dir", str(boards))  # fmt: skip
    assert code == 0, err
    members = (str(runs / "P1F3"), str(runs / "P1F4"), "--ensemble", "--name", "ens[/x]")
    code, out, err = _eval(monkeypatch, capsys, folder, *members, "--leaderboard-dir", str(boards))
    assert code == 0, err
    assert "ens[/x]" in out
    code, out, err = run_cli(monkeypatch, capsys, "leaderboard", "show", str(boards / "pgd20.csv"))
    assert code == 0 and "ens[/x]" in out and "b[/x]" in out, err
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path / "no[/x]run"))
    assert_one_line_error(code, err, "no[/x]run")


# -- 5. one line before any work -------------------------------------------------------------


@pytest.mark.slow
def test_output_paths_are_checked_before_any_work(monkeypatch, capsys, runs, folder, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    code, _, err = _eval(monkeypatch, capsys, folder, str(runs / "P1F3"),
                         "--leaderboard-dir", str(a_file))  # fmt: skip
    assert_one_line_error(code, err, "is a file, not a directory")
    assert not (runs / "P1F3" / "eval").exists() or not any(
        p.stat().st_mtime > a_file.stat().st_mtime for p in (runs / "P1F3" / "eval").iterdir()
    )  # refused before evaluating anything
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE)
    code, _, err = run_cli(monkeypatch, capsys, "train", str(suite), "--out", str(a_file))
    assert_one_line_error(code, err, "is a file, not a directory")
    code, _, err = run_cli(monkeypatch, capsys, "leaderboard", "render", str(CI_PGD20),
                           "--out", str(tmp_path))  # fmt: skip
    assert_one_line_error(code, err, "is a directory")
    code, _, err = run_cli(monkeypatch, capsys, "plot", str(CI_PGD20), "--out", str(tmp_path))
    assert_one_line_error(code, err, "is a directory")


def test_negative_seeds_are_refused(monkeypatch, capsys, tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(suite_toml(seed=-1))
    code, _, err = run_cli(monkeypatch, capsys, "train", str(suite), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "seed must be >= 0")
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path), "--seed", "-1")
    assert_one_line_error(code, err, "--seed must be >= 0")
    for flag, value in (("--cross-check-images", "-1"), ("--cross-check-queries", "0")):
        code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path), flag, value)
        assert_one_line_error(code, err, flag)


@pytest.mark.slow
def test_records_and_checkpoints_that_lie_are_one_line(monkeypatch, capsys, runs, folder, tmp_path):
    import shutil

    pretrain_like = tmp_path / "broken"
    shutil.copytree(runs / "P1F3", pretrain_like)
    config = json.loads((pretrain_like / "config.json").read_text())
    del config["run"]["finetune"]  # a record that lacks keys
    (pretrain_like / "config.json").write_text(json.dumps(config))
    code, _, err = _eval(monkeypatch, capsys, folder, str(pretrain_like))
    assert_one_line_error(code, err, "unreadable run record")
    for key, value in (("epoch", "two"), ("num_classes", 10**12)):
        bad = tmp_path / f"bad-{key}"
        shutil.copytree(runs / "P1F3", bad)
        stem = RunDir(bad).checkpoint("best_ta")
        tensors, meta = ckpt.load_checkpoint(stem)
        ckpt.save_checkpoint(stem, tensors, {**meta, key: value})
        code, _, err = _eval(monkeypatch, capsys, folder, str(bad))
        assert_one_line_error(code, err, f"metadata {key}")


def test_a_model_file_that_exits_at_import_is_one_line(monkeypatch, capsys, tmp_path):
    model = tmp_path / "m.py"
    model.write_text("import sys\nsys.exit(3)\n")
    weights = tmp_path / "w.pt"
    torch.save(create("preact_tiny").state_dict(), weights)
    code, _, err = run_cli(monkeypatch, capsys, "eval", "--model", f"{model}:f", "--weights",
                           str(weights), "--leaderboard-dir", str(tmp_path / "b"))  # fmt: skip
    assert_one_line_error(code, err, "importing")


def test_a_bad_pretext_head_is_refused_when_the_suite_loads(monkeypatch, capsys, tmp_path):
    base = {"epochs": 1}
    runs = {"s": {"pretrain": "std:selfie", "finetune": "F3"}}
    for options, needle in (
        ({"num_heads": 7}, "must divide"),
        ({"num_layers": 10**9}, "absurd size"),
        ({"ffn_dim": 10**6, "num_layers": 200}, "parameters"),
    ):
        suite = tmp_path / "s.toml"
        table = {**base, "task_options": {"selfie": options}}
        suite.write_text(suite_toml(runs=runs, pretrain_protocol=table))
        start = time.perf_counter()
        code, _, err = run_cli(monkeypatch, capsys, "train", str(suite), "--out", str(tmp_path))
        assert_one_line_error(code, err, needle)
        assert time.perf_counter() - start < 30  # checked on the meta device: no allocation


# -- 6. typos that cost hours ----------------------------------------------------------------


def test_typos_in_a_suite_are_refused(monkeypatch, capsys, tmp_path):
    runs = {"r": {"pretrain": "adv:rotation", "pretraining": "adv-rotaton", "finetune": "F4"}}
    for text, needle in (
        (suite_toml(runs=runs), "declared: none"),
        (suite_toml(lr=float("nan")), "expected a finite number"),
        (suite_toml(weight_decay=float("inf")), "expected a finite number"),
    ):
        suite = tmp_path / "s.toml"
        suite.write_text(text)
        code, _, err = run_cli(monkeypatch, capsys, "train", str(suite), "--out", str(tmp_path))
        assert_one_line_error(code, err, needle)


@pytest.mark.slow
def test_a_test_set_with_other_classes_is_refused(monkeypatch, capsys, runs, tmp_path):
    other = make_image_folder(tmp_path / "other", 2, 4, classes=("x", "y", "z"))
    args = ("eval", str(runs / "P1F3"), "--data-dir", str(other), "--device", "cpu",
            "--n", "8", "--leaderboard-dir", str(tmp_path / "b"))  # fmt: skip
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert_one_line_error(code, err, "--allow-other-classes")
    code, _, err = run_cli(monkeypatch, capsys, *args, "--allow-other-classes")
    assert code == 0, err


# -- 7. the CI gate --------------------------------------------------------------------------


@pytest.mark.parametrize("tol", ["nan", "inf", "-1"])
def test_diff_tolerance_must_be_finite(monkeypatch, capsys, tol):
    code, _, err = run_cli(monkeypatch, capsys, "leaderboard", "diff", str(CI_PGD20),
                           str(CI_PGD20), "--tol", tol)  # fmt: skip
    assert_one_line_error(code, err, "--tol must be a finite number")


def test_diffing_two_different_boards_is_bad_input(monkeypatch, capsys):
    table5 = REPO / "leaderboards" / "ci" / "table5.csv"
    table7 = REPO / "leaderboards" / "ci" / "table7.csv"
    code, _, err = run_cli(monkeypatch, capsys, "leaderboard", "diff", str(table5), str(table7))
    assert_one_line_error(code, err, "a table5 board and")


# -- 8. CSV formula injection ----------------------------------------------------------------


def test_formula_names_are_refused_and_formula_cells_neutralised(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "eval", str(tmp_path), str(tmp_path), "--ensemble",
                           "--name", '=HYPERLINK("http://x")')  # fmt: skip
    assert_one_line_error(code, err, "formula")
    weights = tmp_path / "=cmd.pt"
    torch.save({}, weights)
    with pytest.raises(Exception, match="formula"):
        from robench.eval.own_targets import external_target

        (tmp_path / "m.py").write_text("import torch\ndef f():\n    return torch.nn.Linear(1, 1)\n")
        external_target(f"{tmp_path / 'm.py'}:f", weights, state_root=tmp_path, n=1)
    board = tmp_path / "pgd20.csv"
    row = {**leaderboard_row("r"), "run_dir": "=1+1", "flags": "@SUM(A1)"}
    upsert_rows(board, [row], PGD20)
    raw = pd.read_csv(board, dtype=str, keep_default_na=False).iloc[0]
    assert raw["run_dir"] == "'=1+1" and raw["flags"] == "'@SUM(A1)"


def test_markdown_render_escapes_html():
    frame = pd.DataFrame([{**leaderboard_row("<script>alert(1)</script>")}])
    text = board_markdown(frame, "pgd20")
    assert "<script>" not in text and "&lt;script&gt;" in text


# -- 9. killed writes, symlinks, warnings, signals ------------------------------------------


def test_temporaries_of_a_killed_write_are_cleaned_by_the_next(tmp_path):
    board = tmp_path / "pgd20.csv"
    upsert_rows(board, [leaderboard_row("a")], PGD20)
    stale = tmp_path / ".pgd20.csv.killed.tmp"  # what a kill -9 mid-write leaves
    stale.write_text("half")
    upsert_rows(board, [leaderboard_row("b")], PGD20)
    assert not stale.exists() and len(pd.read_csv(board)) == 2


def test_a_symlinked_board_is_written_through(tmp_path):
    target = tmp_path / "shared" / "pgd20.csv"
    upsert_rows(target, [leaderboard_row("a")], PGD20)
    link = tmp_path / "mine" / "pgd20.csv"
    link.parent.mkdir()
    link.symlink_to(target)
    upsert_rows(link, [leaderboard_row("b")], PGD20)
    assert link.is_symlink() and len(pd.read_csv(target)) == 2


def test_the_pickle_refusal_prints_no_torch_warning(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Exception, match="weights_only=True"):
            load_state_dict_file(create("preact_tiny"), path)
    assert not caught, [str(w.message) for w in caught]


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_prints_one_line_and_the_checkpoint_to_resume_from(folder, tmp_path, signum, code):
    suite = tmp_path / "s.toml"
    suite.write_text(suite_toml(epochs=20))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "robench", "train", str(suite), "--out", str(tmp_path / "o"),
         "--only", "P1F4", "--data-dir", str(folder), "--device", "cpu",
         "--checkpoint-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    last = tmp_path / "o" / "P1F4" / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 120
    while not last.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "interrupted; rerun the same command to resume (last checkpoint: P1F4 epoch" in err


# -- 2. no row is silently replaced ---------------------------------------------------------


@pytest.mark.slow
def test_two_runs_of_one_name_are_two_rows_and_a_warning(
    monkeypatch, capsys, runs, folder, tmp_path
):
    import shutil

    other = tmp_path / "elsewhere" / "P1F4"  # the same name from another --out
    shutil.copytree(runs / "P1F4", other)
    boards = tmp_path / "boards"
    for run in (runs / "P1F4", other, runs / "P1F4"):
        code, out, err = _eval(monkeypatch, capsys, folder, str(run), "--leaderboard-dir",
                               str(boards))  # fmt: skip
        assert code == 0, err
    assert "a row named 'P1F4' from another model" in out and "both are kept" in out
    board = pd.read_csv(boards / "pgd20.csv")
    assert (board["run"] == "P1F4").sum() == 2  # the third evaluation replaced its own row
    assert board["model_id"].nunique() == 2 and board["model_id"].str.startswith("run:").all()


@pytest.mark.slow
def test_two_weight_files_named_alike_are_two_models(monkeypatch, capsys, folder, tmp_path):
    factory = tmp_path / "net.py"
    factory.write_text(
        "from robench.models import create\n\ndef make():\n"
        "    return create('preact_tiny', num_classes=10)\n"
    )
    for name, seed in (("a", 0), ("b", 1), ("c", 0)):  # c holds a's weights, in another file
        torch.manual_seed(seed)
        (tmp_path / name).mkdir()
        torch.save(create("preact_tiny", num_classes=10).state_dict(), tmp_path / name / "model.pt")
    boards = tmp_path / "boards"
    for name in "abc":
        code, _, err = run_cli(monkeypatch, capsys, "eval", "--model", f"{factory}:make",
                                 "--weights", str(tmp_path / name / "model.pt"), "--data",
                                 "imagefolder", "--data-dir", str(folder), "--n", "8",
                                 "--device", "cpu", "--leaderboard-dir", str(boards))  # fmt: skip
        assert code == 0, err
    board = pd.read_csv(boards / "pgd20.csv")
    assert (board["run"] == "model").sum() == 2  # a and b; c is a again, by content
    assert board["model_id"].str.startswith("weights:").all()


@pytest.mark.slow
def test_the_same_weights_written_again_reuse_their_flags(
    monkeypatch, capsys, runs, folder, tmp_path
):
    import shutil

    run = tmp_path / "P1F3"
    shutil.copytree(runs / "P1F3", run)
    code, _, err = _eval(monkeypatch, capsys, folder, str(run), "--leaderboard-dir", str(tmp_path))
    assert code == 0, err
    flag_files = sorted(p.name for p in RunDir(run).eval_dir.glob("*.npz"))
    stem = RunDir(run).checkpoint("best_ta")
    tensors, meta = ckpt.load_checkpoint(stem)  # written again, every key in the other order
    ckpt.save_checkpoint(stem, dict(reversed(tensors.items())), dict(reversed(meta.items())))
    code, _, err = _eval(monkeypatch, capsys, folder, str(run), "--leaderboard-dir", str(tmp_path))
    assert code == 0, err
    assert sorted(p.name for p in RunDir(run).eval_dir.glob("*.npz")) == flag_files


# -- 3. one process per run directory --------------------------------------------------------


def test_a_second_process_in_a_run_directory_gets_one_line(monkeypatch, capsys, tmp_path, folder):
    from robench.runs.lock import folder_lock

    suite = tmp_path / "s.toml"
    suite.write_text(SUITE)
    args = ("train", str(suite), "--out", str(tmp_path / "o"), "--only", "P1F3")
    with folder_lock(tmp_path / "o" / "P1F3", "run directory"):  # another process trains it
        code, _, err = run_cli(monkeypatch, capsys, *args, "--data-dir", str(folder))
    assert_one_line_error(code, err, f"in use by another robench process (PID {os.getpid()})")
    assert not (tmp_path / "o" / "P1F3" / "metrics.jsonl").exists()


def test_a_lock_left_by_kill_9_is_taken_over(tmp_path):
    from robench.runs.lock import folder_lock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from robench.runs.lock import folder_lock\n"
         "with folder_lock(sys.argv[1], 'run'):\n    print('held', flush=True); time.sleep(60)",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(Exception, match=f"PID {holder.pid}"), folder_lock(tmp_path, "run"):
        pass
    holder.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
    holder.wait()
    with folder_lock(tmp_path, "run"):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())


# -- 1. flags are seen -----------------------------------------------------------------------


def test_a_flagged_row_is_marked_in_every_document(monkeypatch, capsys, tmp_path):
    from robench.report.tables import board_html

    flagged = {**leaderboard_row("masked", ra=90.0), "flags": "gradient_masking_suspected:9/64"}
    board = upsert_rows(tmp_path / "pgd20.csv", [flagged, leaderboard_row("honest")], PGD20)
    markdown = board_markdown(board, "pgd20")
    assert "\u26a0 masked" in markdown and "\u26a0 honest" not in markdown
    assert "1 flagged row(s)" in markdown
    page = board_html(board, "pgd20")
    assert page.count('<tr class="flagged">') == 1 and "1 flagged row(s)" in page
    code, out, err = run_cli(
        monkeypatch, capsys, "leaderboard", "show", str(tmp_path / "pgd20.csv")
    )
    assert code == 0, err
    compact = "".join(c for c in out if not c.isspace() and c not in "│┃")
    assert "gradient_masking_suspected:9/64" in compact  # the flags column wraps, never hides
