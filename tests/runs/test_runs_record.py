"""Run records: config.json typed and versioned, and old run directories still read the same.

records/v1-*.json are the config.json files robench 0.1.0 wrote before records had a version
(copied from a `robench reproduce smoke` made with it): each must read back as exactly the
spec the shipped smoke suite gives today, which is what lets an old run directory be skipped,
resumed and evaluated instead of refused as "a different configuration".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robench.config import load_suite
from robench.config.protocol import RUNTIME_KEYS
from robench.errors import ConfigError, RobenchError
from robench.runs import RECORD_VERSION, RunDir
from robench.runs.record import parse_record

RECORDS = Path(__file__).parent / "records"
SMOKE = load_suite("smoke")


def _record(name: str) -> dict:
    return json.loads((RECORDS / name).read_text())


@pytest.mark.parametrize("run", ["rotation-P3F4", "rotation-aux-P1F4"])
def test_a_v1_finetuning_record_is_todays_spec(run):
    doc = _record(f"v1-finetune-{run}.json")
    assert "record_version" not in doc
    assert set(RUNTIME_KEYS) <= set(doc["run"]["protocol"])  # the keys that moved to [runtime]
    record = parse_record(doc, "old")
    assert (record.version, record.kind, record.name) == (1, "finetune", run)
    assert record.spec == SMOKE.runs[run]
    assert record.data.train == 256 and record.data.is_jpeg_copy
    assert record.suite is not None and record.suite.name == "smoke"
    assert record.sections["runtime"]["device"] == "cpu"


@pytest.mark.parametrize("name", ["adv-ensemble-dpe", "smooth-selfie"])
def test_a_v1_pretraining_record_is_todays_spec(name):
    record = parse_record(_record(f"v1-pretrain-{name}.json"), "old")
    specs = {s.name: s for s in SMOKE.pretrainings(list(SMOKE.runs.values()))}
    assert (record.version, record.kind) == (1, "pretrain")
    assert record.spec == specs[name]
    assert "task_config" in record.sections


def test_a_record_round_trips_at_the_current_version(tmp_path):
    old = parse_record(_record("v1-finetune-rotation-P3F4.json"), "old")
    rd = RunDir(tmp_path / "run")
    rd.write_record(old)
    doc = json.loads(rd.config.read_text())
    assert doc["record_version"] == RECORD_VERSION == 2
    assert not set(RUNTIME_KEYS) & set(doc["run"]["protocol"])
    new = rd.read_record()
    assert new.version == RECORD_VERSION
    assert (new.spec, new.data, new.suite, new.sections) == (
        old.spec,
        old.data,
        old.suite,
        old.sections,
    )


def test_check_same_accepts_the_old_record_and_refuses_a_changed_spec(tmp_path):
    rd = RunDir(tmp_path / "rotation-P3F4")
    rd.path.mkdir()
    rd.config.write_text(json.dumps(_record("v1-finetune-rotation-P3F4.json")))
    rd.check_same(SMOKE.runs["rotation-P3F4"])  # the old directory resumes and skips
    with pytest.raises(ConfigError, match="different configuration"):
        rd.check_same(SMOKE.runs["rotation-P3F2"])


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d.update(record_version=3), "newer robench"),
        (lambda d: d["run"].update(scenario="P1F4"), "does not match"),
        (lambda d: d["run"].update(finetune="F5"), "expected one of 'F1'"),
        (lambda d: d["run"]["protocol"].update(epochz=3), "unknown key"),
        (lambda d: d.pop("run"), "neither a fine-tuning nor a pretraining"),
    ],
)
def test_a_bad_record_is_one_line(change, needle):
    doc = _record("v1-finetune-rotation-P3F4.json")
    change(doc)
    with pytest.raises(RobenchError, match=needle) as info:
        parse_record(doc, "bad.json")
    assert "\n" not in str(info.value)
