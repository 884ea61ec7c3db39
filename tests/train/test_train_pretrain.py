"""Pretraining (P2/P3), trunk transfer and partial/full fine-tuning, on synthetic images."""

import json

import pytest
import torch
from helpers import quiet_session, suite_toml, train_env

from robench.config import load_suite
from robench.errors import CheckpointError, ConfigError, RobenchError
from robench.models import create
from robench.pretext import create_task
from robench.runs import checkpoint as ckpt
from robench.runs.run_dir import RunDir
from robench.train.finetune import train_run
from robench.train.lifecycle import PRETRAIN_FOLDER
from robench.train.pretrain import pretrain_run
from robench.train.transfer import load_trunk, trunk_tensors
from robench.workflow import reproduce, train

from synthetic import make_image_folder

SUITE = suite_toml(
    epochs=2,
    batch_size=40,
    lr=0.05,
    val_ra_subset=20,
    eval_batch_size=40,
    train_attack={"steps": 2},
    val_attack={"steps": 2},
    pretrain_protocol={
        "epochs": 2,
        "batch_size": 40,
        "val_subset": 40,
        "attack": {"steps": 3},
        "task_options": {"selfie": {"num_layers": 1, "num_heads": 4, "ffn_dim": 32}},
    },
    runs={
        "P1F4": {"finetune": "F4"},
        "rot-P3F1": {"pretrain": "adv:rotation", "finetune": "F1"},
        "rot-P3F2": {"pretrain": "adv:rotation", "finetune": "F2"},
        "rot-P3F4": {"pretrain": "adv:rotation", "finetune": "F4"},
        "jig-P2F3": {"pretrain": "std:jigsaw", "finetune": "F3"},
        "selfie-P3F3": {"pretrain": "adv:selfie", "finetune": "F3"},
    },
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("synthetic"), train_per_class=20)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, folder):
    """Every pretraining of SUITE, then every fine-tuning run, once for the module."""
    path = tmp_path_factory.mktemp("suite") / "suite.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    out = tmp_path_factory.mktemp("runs")
    train(quiet_session(str(folder)), suite, out, None)
    return suite, out


def _tensors(stem):
    return ckpt.load_checkpoint(stem)[0]


@pytest.mark.slow
def test_pretraining_keeps_trunk_and_task_head_apart(trained):
    _, out = trained
    run = RunDir(out / PRETRAIN_FOLDER / "adv-rotation")
    trunk, meta = ckpt.load_checkpoint(run.path / "trunk")
    head, _ = ckpt.load_checkpoint(run.path / "task_head")
    assert trunk and all(k.startswith("trunk.") for k in trunk)
    assert head and all(k.startswith("task.") for k in head)
    assert (meta["pretext"], meta["mode"], meta["scenario"]) == ("rotation", "adv", "P3")
    records = [json.loads(x) for x in run.metrics.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["lr"] < records[0]["lr"]  # cosine decay


@pytest.mark.slow
def test_adversarial_pretraining_raises_the_pretext_loss_under_attack(trained):
    _, out = trained
    for name in ("adv-rotation", "adv-selfie"):
        records = RunDir(out / PRETRAIN_FOLDER / name).metrics.read_text().splitlines()
        for record in map(json.loads, records):
            # train_loss = 0.5 * (clean + adv), so adv > train_loss means adv > clean
            assert record["train_loss_adv"] > record["train_loss"], name
    std = json.loads(
        RunDir(out / PRETRAIN_FOLDER / "std-jigsaw").metrics.read_text().splitlines()[0]
    )
    assert "train_loss_adv" not in std


@pytest.mark.slow
def test_jigsaw_permutations_are_restored_from_the_checkpoint(trained):
    _, out = trained
    head, meta = ckpt.load_checkpoint(out / PRETRAIN_FOLDER / "std-jigsaw" / "task_head")
    saved = head["task.permutations"]
    task = create_task("jigsaw", create("preact_tiny"), seed=123)
    assert not torch.equal(task.permutations, saved)
    task.load_state_dict({k[5:]: v for k, v in head.items()}, strict=True)
    assert torch.equal(task.permutations, saved) and meta["task_config"]["seed"] == 0


@pytest.mark.slow
def test_fine_tuning_inherits_exactly_the_trunk(trained):
    _, out = trained
    pretrained = _tensors(out / PRETRAIN_FOLDER / "adv-rotation" / "trunk")
    model = create("preact_tiny")
    fresh_head = {k: v.clone() for k, v in model.head.state_dict().items()}
    load_trunk(model, out / PRETRAIN_FOLDER / "adv-rotation" / "trunk")
    assert all(torch.equal(v, pretrained[k]) for k, v in trunk_tensors(model).items())
    assert all(torch.equal(v, fresh_head[k]) for k, v in model.head.state_dict().items())
    config = json.loads((out / "rot-P3F4" / "config.json").read_text())
    assert config["inherited_trunk"]["pretraining"] == "adv-rotation"


@pytest.mark.slow
@pytest.mark.parametrize("run", ["rot-P3F1", "rot-P3F2"])
def test_partial_fine_tuning_leaves_the_trunk_bit_identical(trained, run):
    _, out = trained
    pretrained = _tensors(out / PRETRAIN_FOLDER / "adv-rotation" / "trunk")
    final = _tensors(RunDir(out / run).checkpoint("last"))
    for key, value in pretrained.items():  # BatchNorm running statistics included
        assert torch.equal(final["model." + key], value), key
    torch.manual_seed(0)  # the run's seed: the head's initialisation, which must have trained
    initial = {"model.head." + k: v for k, v in create("preact_tiny").head.state_dict().items()}
    assert any(not torch.equal(final[k], v) for k, v in initial.items() if "num_batches" not in k)


@pytest.mark.slow
@pytest.mark.parametrize("run", ["rot-P3F4", "jig-P2F3", "selfie-P3F3"])
def test_full_fine_tuning_changes_the_trunk(trained, run):
    _, out = trained
    name = json.loads((out / run / "config.json").read_text())["inherited_trunk"]["pretraining"]
    pretrained = _tensors(out / PRETRAIN_FOLDER / name / "trunk")
    final = _tensors(RunDir(out / run).checkpoint("last"))
    assert any(not torch.equal(final["model." + k], v) for k, v in pretrained.items())


@pytest.mark.slow
def test_a_mismatched_trunk_fails_loudly(trained, tmp_path):
    _, out = trained
    stem = out / PRETRAIN_FOLDER / "adv-rotation" / "trunk"
    with pytest.raises(CheckpointError, match="trunk of a 'preact_tiny'"):
        load_trunk(create("preact_small"), stem)
    tensors, meta = ckpt.load_checkpoint(stem)
    tensors.pop(next(iter(tensors)))
    ckpt.save_checkpoint(tmp_path / "trunk", tensors, meta)
    with pytest.raises(CheckpointError, match="missing"):
        load_trunk(create("preact_tiny"), tmp_path / "trunk")


@pytest.mark.slow
def test_fine_tuning_without_its_pretraining_is_an_error(trained, tmp_path, folder):
    suite, _ = trained
    with pytest.raises(RobenchError, match="has not finished"):
        train_run(suite.runs["rot-P3F4"], tmp_path, train_env(folder))


@pytest.mark.slow
def test_reproduce_writes_table3_with_the_papers_numbers(tmp_path, folder):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.replace("epochs = 2", "epochs = 1"))
    done = reproduce(
        quiet_session(str(folder)),
        load_suite(path),
        tmp_path / "out",
        ["P1F4", "rot-P3F4", "jig-P2F3"],
    )
    table = __import__("pandas").read_csv(done.boards.path("table3"))
    cells = set(zip(table.pretext, table.scenario, strict=True))
    # P1F4 repeats under each pretext that the suite uses
    assert cells == {
        ("rotation", "P1F4"),
        ("jigsaw", "P1F4"),
        ("rotation", "P3F4"),
        ("jigsaw", "P2F3"),
    }
    row = table.set_index(["pretext", "scenario"]).loc[("rotation", "P3F4")]
    assert (row.ta_paper, row.ra_paper, row.epochs_paper) == (85.66, 50.40, 46)
    assert row.ra_diff == pytest.approx(row.ra - 50.40)


def test_suite_pretraining_references_are_checked(tmp_path):
    def load(text):
        path = tmp_path / "s.toml"
        path.write_text(text)
        return load_suite(path)

    suite = load(SUITE)
    assert suite.runs["rot-P3F1"].pretraining == suite.runs["rot-P3F4"].pretraining
    assert [s.name for s in suite.pretrainings(list(suite.runs.values()))] == [
        "adv-rotation",
        "std-jigsaw",
        "adv-selfie",
    ]
    assert suite.runs["rot-P3F2"].scenario == "P3F2" and suite.runs["jig-P2F3"].scenario == "P2F3"
    bad = [
        (SUITE + '[pretraining.adv-rotation]\ntask = "jigsaw"\nmode = "adv"\n', "is adv:jigsaw"),
        (SUITE.replace("num_layers = 1", "layers = 3"), "selfie.layers: unknown option"),
        (SUITE + '[runs.pretrain]\nfinetune = "F3"\n', "reserved"),
        (
            SUITE.replace(
                "[runs.P1F4]",
                '[runs.x]\npretrain = "adv:rotation"\nfinetune = "F4"\n'
                'model = "preact_small"\n[runs.P1F4]',
            ),
            "cannot inherit",
        ),
        (SUITE.replace('pretrain = "std:jigsaw"', 'pretrain = "std:jigsw"'), "unknown pretext"),
    ]
    for text, needle in bad:
        with pytest.raises(ConfigError, match=needle):
            load(text)


@pytest.mark.slow
def test_pretraining_on_another_image_folder_resizes_it(tmp_path, folder):
    """Labels unused, 48x48 images: the trunk still fits the 32x32 fine-tuning model."""
    other = make_image_folder(tmp_path / "other", train_per_class=8, test_per_class=1, size=48)
    text = SUITE.replace("[pretrain_protocol]\n", f'[pretrain_protocol]\ndata_dir = "{other}"\n')
    path = tmp_path / "suite.toml"
    path.write_text(text)
    suite = load_suite(path)
    spec = suite.runs["jig-P2F3"].pretraining
    pretrain_run(spec, tmp_path / PRETRAIN_FOLDER, train_env(folder))
    config = json.loads((tmp_path / PRETRAIN_FOLDER / "std-jigsaw" / "config.json").read_text())
    assert config["data"]["train"] == 72 and "other" in config["data"]["dataset"]
    load_trunk(create("preact_tiny"), tmp_path / PRETRAIN_FOLDER / "std-jigsaw" / "trunk")
