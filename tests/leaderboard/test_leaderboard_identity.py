"""No row is silently replaced (issue #18, section 2): the model's identity is in the key.

Two models under one name are two rows and a warning; the same model again replaces its row;
a board from before identities existed is migrated on the next write, with a note; `diff`
still matches two machines' reproductions by name. Identities come from tensors, not files.
"""

from __future__ import annotations

import json

import pandas as pd
import torch
from helpers import leaderboard_row
from safetensors.torch import save_file

from robench.leaderboard import PGD20, read_board, upsert_rows
from robench.leaderboard.diff import diff_boards
from robench.runs.identity import tensors_sha256


def _upsert(path, *rows):
    heard: list[str] = []
    board = upsert_rows(path, list(rows), PGD20, heard.append)
    return board, heard


def test_a_second_model_under_a_name_is_kept_beside_the_first_with_a_warning(tmp_path):
    path = tmp_path / "pgd20.csv"
    _upsert(path, {**leaderboard_row("P1F4", ra=40.0), "model_id": "run:aaaa"})
    board, heard = _upsert(path, {**leaderboard_row("P1F4", ra=10.0), "model_id": "run:bbbb"})
    assert sorted(board["ra"]) == [10.0, 40.0]
    assert len(heard) == 1 and "'P1F4'" in heard[0] and "run:aaaa" in heard[0]
    assert "both are kept" in heard[0]


def test_the_same_model_again_replaces_its_own_row_quietly(tmp_path):
    path = tmp_path / "pgd20.csv"
    _upsert(path, {**leaderboard_row("P1F4", ra=40.0), "model_id": "run:aaaa"})
    board, heard = _upsert(path, {**leaderboard_row("P1F4", ra=41.0), "model_id": "run:aaaa"})
    assert board["ra"].tolist() == [41.0] and heard == []


def test_a_board_from_before_identities_is_migrated_with_a_note(tmp_path):
    path = tmp_path / "pgd20.csv"
    old = pd.DataFrame([leaderboard_row("P1F4", ra=40.0), leaderboard_row("P1F3", ra=0.0)])
    old.drop(columns=["model_id", "worst_ra"]).to_csv(path, index=False)  # an old file's columns
    board, heard = _upsert(path, {**leaderboard_row("P1F4", ra=41.0), "model_id": "run:aaaa"})
    assert len(board) == 2  # P1F4 replaced, P1F3 untouched
    assert board.set_index("run").loc["P1F4", "ra"] == 41.0
    assert pd.isna(board.set_index("run").loc["P1F3", "model_id"])
    assert (
        len(heard) == 1 and "before rows carried a model identity or precision (P1F4)" in heard[0]
    )
    assert list(read_board(path).columns)[: len(PGD20.names)] == list(PGD20.names)


def test_diff_matches_two_machines_rows_by_name_and_protocol(tmp_path):
    base, new = tmp_path / "base" / "pgd20.csv", tmp_path / "new" / "pgd20.csv"
    for path, ident, ra in ((base, "run:aaaa", 40.0), (new, "run:cccc", 39.8)):
        upsert_rows(path, [{**leaderboard_row("P1F4", ra=ra), "model_id": ident}], PGD20)
    diff = diff_boards(base, new, tol=0.5)
    assert diff.ok and not diff.appeared and not diff.disappeared
    assert "model_id" not in diff.key


def test_diff_tells_two_models_of_one_name_apart_by_identity(tmp_path):
    base, new = tmp_path / "base" / "pgd20.csv", tmp_path / "new" / "pgd20.csv"
    rows = [
        {**leaderboard_row("P1F4", ra=40.0), "model_id": "run:aaaa"},
        {**leaderboard_row("P1F4", ra=10.0), "model_id": "run:bbbb"},
    ]
    upsert_rows(base, rows, PGD20)
    upsert_rows(new, [rows[0]], PGD20)
    diff = diff_boards(base, new)
    assert "model_id" in diff.key and len(diff.disappeared) == 1 and not diff.ok


def test_identities_are_of_tensors_and_metadata_not_of_file_bytes(tmp_path):
    tensors = {"b": torch.arange(6.0).view(2, 3), "a": torch.ones(3, dtype=torch.bfloat16)}
    reordered = {"a": tensors["a"].clone(), "b": tensors["b"].clone()}
    assert tensors_sha256(tensors, {"x": 1, "y": 2}) == tensors_sha256(reordered, {"y": 2, "x": 1})
    changed = {**tensors, "b": tensors["b"] + 1e-6}
    assert tensors_sha256(changed) != tensors_sha256(tensors)
    assert tensors_sha256({"b": tensors["b"].double(), "a": tensors["a"]}) != tensors_sha256(
        tensors
    )
    assert tensors_sha256(tensors, {"epoch": 1}) != tensors_sha256(tensors, {"epoch": 2})
    # The same tensors and metadata, headers written in two key orders: two files, one id.
    meta = {"epoch": 3, "seed": 0}
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    save_file(tensors, str(first), metadata={"k": json.dumps(meta), "format": "pt"})
    save_file(reordered, str(second), metadata={"format": "pt", "k": json.dumps(meta)})
    from safetensors.torch import load_file

    assert tensors_sha256(load_file(str(first)), meta) == tensors_sha256(
        load_file(str(second)), meta
    )
