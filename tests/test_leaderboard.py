import threading

import pytest

from robench.errors import RobenchError
from robench.leaderboard import PGD20, read_board, upsert_rows


def _row(run="a", ra=40.0, n=100):
    row = dict.fromkeys(PGD20.names, "")
    row.update(
        run=run,
        suite="pgd20",
        pretext="none",
        scenario="P1F4",
        checkpoint="best_ta",
        ta=80.0,
        ra=ra,
        attack="pgd-linf",
        eps="8/255",
        eps_value=8 / 255,
        step_size="2/255",
        steps=20,
        restarts=1,
        n_eval=n,
        seed=0,
        dataset="CIFAR-10 (JPEG copy)",
        is_jpeg_copy=True,
        epochs_to_best=3,
    )
    return row


def test_upsert_replaces_same_key_and_keeps_others(tmp_path):
    path = tmp_path / "pgd20.csv"
    upsert_rows(path, [_row("a", 40.0), _row("b", 30.0)])
    upsert_rows(path, [_row("a", 42.0)])
    upsert_rows(path, [_row("a", 41.0, n=50)])  # another protocol: a new row
    board = read_board(path)
    assert len(board) == 3
    assert board.loc[(board.run == "a") & (board.n_eval == 100), "ra"].item() == 42.0
    assert board["ra"].dtype == "float64"
    assert bool(board["is_jpeg_copy"].iloc[0])


def test_numbers_are_stored_as_numbers(tmp_path):
    path = tmp_path / "b.csv"
    upsert_rows(path, [_row()])
    text = path.read_text()
    assert ",40.0," in text and "8/255" in text
    board = read_board(path)
    assert board["steps"].iloc[0] == 20 and board["eps_value"].iloc[0] == pytest.approx(8 / 255)


def test_concurrent_upserts_lose_no_rows(tmp_path):
    path = tmp_path / "c.csv"
    threads = [threading.Thread(target=upsert_rows, args=(path, [_row(f"r{i}")])) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(read_board(path).run) == sorted(f"r{i}" for i in range(8))


def test_a_file_that_is_not_a_leaderboard(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("hello,world\n1,2\n")
    with pytest.raises(RobenchError, match="not a robench leaderboard"):
        read_board(path)
