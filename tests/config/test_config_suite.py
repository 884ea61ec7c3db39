from pathlib import Path

import pytest

from robench.config import load_suite
from robench.config.suite import SUITES_DIR
from robench.errors import ConfigError

GOOD = """
[suite]
description = "test"
[protocol]
model = "preact_tiny"
epochs = 10
[protocol.train_attack]
steps = 5
[runs.P1F3]
finetune = "F3"
[runs.P1F4]
finetune = "F4"
epochs = 4
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def test_runs_inherit_and_override_the_protocol(tmp_path):
    suite = load_suite(_write(tmp_path, GOOD))
    st, at = suite.runs["P1F3"], suite.runs["P1F4"]
    assert (st.protocol.epochs, at.protocol.epochs) == (10, 4)
    assert at.protocol.train_attack.steps == 5 and at.protocol.train_attack.eps == "8/255"
    assert (st.scenario, at.scenario) == ("P1F3", "P1F4")
    assert not st.adversarial and at.adversarial
    assert len(suite.sha256) == 64


def test_milestones_scale_with_epochs(tmp_path):
    suite = load_suite(_write(tmp_path, GOOD))
    assert suite.runs["P1F3"].protocol.milestone_epochs() == [3, 5]
    assert load_suite(SUITES_DIR / "paper.toml").protocol.milestone_epochs() == [30, 50]


@pytest.mark.parametrize(
    "text,needle",
    [
        (GOOD.replace("epochs = 10", "epoch = 10"), "protocol.epoch: unknown key"),
        (GOOD.replace("epochs = 10", 'epochs = "ten"'), "protocol.epochs: expected an integer"),
        (GOOD.replace("epochs = 10", "epochs = 0"), "epochs must be >= 1"),
        (GOOD.replace("steps = 5", 'steps = 5\neps = "9/0"'), "eps"),
        (GOOD.replace("steps = 5", 'steps = 5\neps = "300/255"'), "outside [0, 1]"),
        (GOOD.replace('finetune = "F4"', 'finetune = "F9"'), "runs.P1F4.finetune"),
        (GOOD.replace('finetune = "F4"', 'finetune = "F2"'), "freezes a pretrained trunk"),
        (GOOD.replace('finetune = "F4"', 'finetune = "F4"\npretrain = "adv:nope"'), "nope"),
        (GOOD + "\n[extra]\n", "unknown top-level table"),
        (GOOD.replace("[runs.P1F3]", "[runs.P1F3"), "not valid TOML"),
        ("[protocol]\nepochs = 1\n", "no [runs.<name>]"),
    ],
)
def test_bad_suites_fail_with_file_and_key(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value) or "not found" in str(info.value)


@pytest.mark.parametrize("name", ["smoke", "quick", "reduced", "paper"])
def test_shipped_suites_load(name):
    suite = load_suite(name)
    assert {r.scenario for r in suite.runs.values()} >= {"P1F3", "P1F4"}


def test_paper_suite_is_the_papers_protocol():
    p = load_suite("paper").protocol
    assert (p.model, p.epochs, p.batch_size, p.lr, p.momentum) == (
        "preact_resnet50v2",
        100,
        256,
        0.1,
        0.9,
    )
    assert (p.train_attack.eps, p.train_attack.step_size, p.train_attack.steps) == (
        "8/255",
        "2/255",
        10,
    )
    assert p.eval_n is None  # all 10,000 test images


def test_unknown_suite_name():
    with pytest.raises(ConfigError, match="not found"):
        load_suite("no-such-suite")


def test_runtime_is_a_suite_wide_table_and_per_run_keys_are_refused(tmp_path):
    suite = load_suite(_write(tmp_path, GOOD + "[runtime]\namp = false\ncompile = true\n"))
    assert (suite.runtime.amp, suite.runtime.channels_last, suite.runtime.compile) == (
        False,
        True,
        True,
    )
    assert load_suite(_write(tmp_path, GOOD)).runtime.amp  # the default: bf16 on CUDA
    for text in (
        GOOD.replace("epochs = 10", "epochs = 10\namp = false"),
        GOOD.replace("epochs = 4", "epochs = 4\nchannels_last = false"),
    ):
        with pytest.raises(ConfigError, match=r"\[runtime\] table"):
            load_suite(_write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"runtime\.amp: expected true or false"):
        load_suite(_write(tmp_path, GOOD + '[runtime]\namp = "yes"\n'))


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("norm", '"l3"', "norm: expected one of 'linf', 'l2'"),
        ("bn_mode", '"frozen"', "bn_mode: expected one of 'eval', 'train'"),
    ],
)
def test_closed_sets_are_checked_when_the_suite_is_read(tmp_path, key, value, needle):
    text = GOOD.replace("steps = 5", f"steps = 5\n{key} = {value}")
    with pytest.raises(ConfigError, match=needle):
        load_suite(_write(tmp_path, text))
