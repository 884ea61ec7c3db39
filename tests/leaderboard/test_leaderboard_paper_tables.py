"""Tables 5-8 and Figure 3: [tables.*] in suites, the rotation-auxiliary baseline, the builders."""

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from helpers import suite_toml, train_env

from robench.attacks.pgd import PGD
from robench.config import load_suite
from robench.errors import ConfigError
from robench.leaderboard.paper_tables import build_paper_table, paper_rows
from robench.leaderboard.schema import TABLE5, TABLE6
from robench.models import attach_rotation_head, create
from robench.runs import checkpoint as ckpt
from robench.runs.run_dir import RunDir
from robench.runtime import Runtime
from robench.train.finetune import train_run
from robench.train.rotation_aux import (
    JointOutputs,
    RotationAuxiliaryObjective,
    four_rotations,
    joint_loss,
)

from synthetic import make_image_folder

EPS = 8 / 255

BASE = suite_toml(
    batch_size=32,
    val_ra_subset=16,
    eval_n=32,
    eval_batch_size=32,
    train_attack={"steps": 2},
    val_attack={"steps": 2},
    pretrain_protocol={"epochs": 1},
    pretraining={"adv-rotation-small": {"task": "rotation", "mode": "adv", "train_subset": 64}},
    runs={
        "P1F4": {"finetune": "F4"},
        "rotation-P3F4": {"pretrain": "adv:rotation", "finetune": "F4"},
        "jigsaw-P3F4": {"pretrain": "adv:jigsaw", "finetune": "F4"},
        "aux": {"finetune": "F4", "auxiliary": "rotation"},
        "rotation-small-P3F4": {
            "pretrain": "adv:rotation",
            "pretraining": "adv-rotation-small",
            "finetune": "F4",
        },
    },
)


def _suite(tmp_path, extra: str = ""):
    path = tmp_path / "suite.toml"
    path.write_text(BASE + extra)
    return load_suite(path)


# --- [tables.*] in suite files ---------------------------------------------------------------


def test_tables_name_rows_runs_and_ensembles(tmp_path):
    suite = _suite(
        tmp_path,
        """
[tables.table5]
rotation_pretraining = "rotation-P3F4"
[tables.table6]
"jigsaw+rotation" = ["jigsaw-P3F4", "rotation-P3F4"]
[tables.figure3]
baseline = "aux"
ours = "rotation-P3F4"
steps = 20
""",
    )
    assert suite.tables["table5"].rows == {"rotation_pretraining": "rotation-P3F4"}
    assert suite.tables["table6"].rows["jigsaw+rotation"] == ("jigsaw-P3F4", "rotation-P3F4")
    assert suite.tables["figure3"].options == {"steps": 20}
    assert suite.tables["figure3"].runs() == ["aux", "rotation-P3F4"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("[tables.table9]\nx = 'P1F4'\n", "unknown table"),
        ("[tables.table5]\nx = 'nope'\n", "no run named 'nope'"),
        ("[tables.table6]\nx = ['P1F4']\n", "at least 2 run names"),
        ("[tables.table6]\nx = ['P1F4', 'P1F4']\n", "listed twice"),
        ("[tables.figure3]\nbaseline = 'aux'\n", "missing ours"),
        ("[tables.figure3]\nbaseline = 'aux'\nours = 'P1F4'\nn = 0\n", "positive integer"),
        ("[tables.figure3]\nbaseline = 'aux'\nours = 'P1F4'\nside = 'P1F4'\n", "unknown key"),
    ],
)
def test_bad_tables_are_one_line_errors(tmp_path, extra, needle):
    with pytest.raises(ConfigError, match=needle):
        _suite(tmp_path, extra)


def test_auxiliary_head_is_for_end_to_end_runs_only(tmp_path):
    with pytest.raises(ConfigError, match="end to end"):
        _suite(
            tmp_path,
            '[runs.bad]\npretrain = "adv:rotation"\nfinetune = "F4"\nauxiliary = "rotation"\n',
        )
    with pytest.raises(ConfigError, match="only auxiliary task"):
        _suite(tmp_path, '[runs.bad]\nfinetune = "F4"\nauxiliary = "jigsaw"\n')


def test_table3_keeps_plain_cells_only(tmp_path):
    suite = _suite(tmp_path)
    plain = {name for name, run in suite.runs.items() if run.is_table3_cell}
    assert plain == {"P1F4", "rotation-P3F4", "jigsaw-P3F4"}  # not aux, not the resized set


# --- the one-shot rotation-auxiliary baseline (Hendrycks et al. 2019) --------------------------


def _aux_model():
    torch.manual_seed(0)
    return attach_rotation_head(create("preact_tiny")).eval()


def test_four_rotations_blocks_and_labels():
    x = torch.rand(3, 3, 32, 32)
    rotated, labels = four_rotations(x)
    assert rotated.shape == (12, 3, 32, 32)
    assert labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    torch.testing.assert_close(rotated[:3], x)
    torch.testing.assert_close(rotated[3:6], torch.rot90(x, 1, dims=(2, 3)))


def test_joint_loss_is_class_ce_of_upright_copies_plus_half_rotation_ce():
    model = _aux_model()
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 10, (4,))
    inputs, rotations = four_rotations(x)
    targets = torch.stack([y.repeat(4), rotations], 1)
    outputs = JointOutputs(model)(inputs)
    expected = F.cross_entropy(model(x), y) + 0.5 * F.cross_entropy(
        model.rotation_head(model.head.pooled(model.features(inputs))), rotations
    )
    torch.testing.assert_close(joint_loss(outputs, targets, 0.5), expected)


def test_joint_attack_stays_in_each_copys_ball_and_raises_the_joint_loss():
    model = _aux_model()
    attack = PGD(EPS, 2 / 255, 5)
    objective = RotationAuxiliaryObjective(model, attack, 0.5, Runtime.select("cpu"))
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    clean_inputs, rotations = four_rotations(x)
    targets = torch.stack([y.repeat(4), rotations], 1)
    x_adv = objective.attack.perturb(objective.joint, clean_inputs, targets, torch.Generator())
    # Around the rotated clean copy, never around an already-perturbed one (the upstream bug).
    assert (x_adv - clean_inputs).abs().max() <= EPS + 1e-6
    with torch.no_grad():
        clean = joint_loss(objective.joint(clean_inputs), targets, 0.5)
        adv = joint_loss(objective.joint(x_adv), targets, 0.5)
    assert adv > clean


def test_custom_objective_is_what_pgd_ascends():
    model = create("preact_tiny").eval()
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    descend = PGD(EPS, 2 / 255, 5).with_objective(
        lambda logits, t: -F.cross_entropy(logits.float(), t, reduction="sum")
    )
    x_low = descend.perturb(model, x, y, torch.Generator().manual_seed(0))
    x_high = PGD(EPS, 2 / 255, 5).perturb(model, x, y, torch.Generator().manual_seed(0))
    with torch.no_grad():
        low, high = F.cross_entropy(model(x_low), y), F.cross_entropy(model(x_high), y)
        assert low < F.cross_entropy(model(x), y) < high
    with pytest.raises(ConfigError, match="one restart"):
        PGD(EPS, 2 / 255, 5, restarts=2).with_objective(lambda o, t: o.sum())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"), train_per_class=10)


@pytest.mark.slow
def test_baseline_trains_and_its_checkpoint_reloads_with_the_head(tmp_path, folder):
    suite = _suite(tmp_path)
    train_run(suite.runs["aux"], tmp_path / "runs", train_env(folder, suite))
    stem = RunDir(tmp_path / "runs" / "aux").checkpoint("best_ta")
    tensors, meta = ckpt.load_checkpoint(stem)
    assert meta["auxiliary"] == "rotation"
    assert {"model.rotation_head.weight", "model.rotation_head.bias"} <= set(tensors)
    model, _ = ckpt.load_model_checkpoint(stem)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)  # evaluation sees the classifier
    # Without the metadata the extra keys are refused, not dropped.
    del meta["auxiliary"]
    ckpt.save_checkpoint(tmp_path / "stripped", tensors, meta)
    with pytest.raises(Exception, match="rotation_head"):
        ckpt.load_model_checkpoint(tmp_path / "stripped")


# --- building the tables -----------------------------------------------------------------------


def _pgd20(rows):
    base = {
        "model": "preact_tiny",
        "attack": "pgd-linf",
        "eps": "8/255",
        "steps": 20,
        "n_eval": 64,
        "dataset": "x",
        "device": "cpu",
        "pretext": "p",
        "scenario": "P3F4",
        "epochs_to_best": None,
    }
    return pd.DataFrame([{**base, **row} for row in rows])


def test_paper_numbers_sit_beside_ours_with_differences(tmp_path):
    suite = _suite(tmp_path, '[tables.table5]\nap_dpe = "rotation-P3F4"\nmine = "P1F4"\n')
    pgd20 = _pgd20(
        [
            {"run": "rotation-P3F4", "ta": 80.0, "ra": 50.0, "epochs_to_best": 50},
            {"run": "P1F4", "ta": 70.0, "ra": 40.0, "epochs_to_best": 9},
        ]
    )
    table = build_paper_table(suite.tables["table5"], pgd20, {"rotation-P3F4": 256})
    assert list(table.columns) == list(TABLE5.names)
    dpe = table.set_index("row").loc["ap_dpe"]
    assert (dpe["ta_paper"], dpe["ra_paper"], dpe["epochs_paper"]) == (83.00, 52.22, 56)
    assert dpe["ta_diff"] == pytest.approx(-3.0) and dpe["ra_diff"] == pytest.approx(-2.22)
    assert dpe["pretrain_images"] == 256
    assert pd.isna(table.set_index("row").loc["mine", "ta_paper"])  # no such paper row


def test_table6_rows_are_ensembles_and_a_missing_result_is_an_error(tmp_path):
    suite = _suite(
        tmp_path, '[tables.table6]\n"jigsaw+rotation" = ["jigsaw-P3F4", "rotation-P3F4"]\n'
    )
    spec = suite.tables["table6"]
    with pytest.raises(KeyError, match="jigsaw\\+rotation"):
        build_paper_table(spec, _pgd20([{"run": "rotation-P3F4", "ta": 1.0, "ra": 0.0}]), {})
    pgd20 = _pgd20([{"run": "jigsaw+rotation", "ta": 86.0, "ra": 53.0}])
    table = build_paper_table(spec, pgd20, {})
    assert list(table.columns) == list(TABLE6.names)
    row = table.iloc[0]
    assert row["members"] == "jigsaw-P3F4+rotation-P3F4"
    assert (row["ta_paper"], row["ra_paper"]) == (85.36, 53.08)


def test_paper_rows_of_tables_7_and_8_are_split_into_numbers():
    assert paper_rows("7")["cifar30k_P3F2"] == {"ta": 65.65, "ra": 30.00, "epochs": 70.0}
    assert paper_rows("8")["randsmooth_rotation_F4"] == {"ta": 85.62, "ra": 51.25, "epochs": 46.0}
