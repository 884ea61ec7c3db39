"""The job DAG of a reproduction, its cost plan, and the launcher settings (no jobs run)."""

from __future__ import annotations

import pytest
from helpers import REPO, assert_one_line_error, run_cli

from robench.config import load_suite
from robench.config.launcher import LauncherConfig, load_launcher
from robench.errors import ConfigError, RobenchError
from robench.launch import reproduction_jobs
from robench.launch.dag import REPORT, job_by_id
from robench.launch.plan import JobCost, forward_flops, job_costs, wall_hours


@pytest.fixture(scope="module")
def smoke():
    suite = load_suite("smoke")
    return suite, reproduction_jobs(suite, None)


def test_every_run_and_pretraining_is_one_job_in_dependency_order(smoke):
    suite, jobs = smoke
    ids = [j.id for j in jobs]
    assert len(ids) == len(set(ids))
    assert {j.target for j in jobs if j.kind == "train"} == set(suite.runs)
    pretrainings = {p.name for p in suite.pretrainings(list(suite.runs.values()))}
    assert {j.target for j in jobs if j.kind == "pretrain"} == pretrainings
    seen: set[str] = set()
    for job in jobs:  # every job after what it waits for
        assert set(job.after) <= seen, job.id
        seen.add(job.id)
    rotation = job_by_id(jobs, "train.rotation-P3F4")
    assert rotation.after == ("pretrain.adv-rotation",) and rotation.adversarial
    assert job_by_id(jobs, "train.P1F4").after == ()
    assert set(job_by_id(jobs, "eval.table6").after) == {
        f"train.{m}" for m in suite.tables["table6"].runs()
    }
    assert jobs[-1].id == REPORT and set(jobs[-1].after) == set(ids[:-1])
    with pytest.raises(RobenchError, match=r"no job 'train\.nope'"):
        job_by_id(jobs, "train.nope")


def test_only_selects_the_runs_and_what_they_need(smoke):
    suite, _ = smoke
    jobs = reproduction_jobs(suite, ["rotation-P3F4", "P1F4"])
    expected = {"pretrain.adv-rotation", "train.P1F4", "train.rotation-P3F4", REPORT}
    assert {j.id for j in jobs} == expected  # no table is complete: no table jobs


def test_wall_time_is_a_list_schedule_of_the_dag():
    a, b = JobCost("a", (), 2.0, "x"), JobCost("b", (), 1.0, "x")
    c = JobCost("c", ("a", "b"), 1.0, "x")
    assert wall_hours([a, b, c], 1) == pytest.approx(4.0)  # all in a row
    assert wall_hours([a, b, c], 2) == pytest.approx(3.0)  # a | b, then c after both
    assert wall_hours([a, b, c], 64) == pytest.approx(3.0)  # the critical path


def test_the_plan_says_where_each_throughput_came_from(smoke, tmp_path):
    _, jobs = smoke
    bench = REPO / "benchmarks" / "results" / "cpu-xeon-2-50ghz-1t.csv"
    costs = job_costs(jobs, out=tmp_path, benchmark_csvs=[bench], tflops=50.0)
    by_id = {c.job: c for c in costs}
    # smoke's preact_tiny is in the benchmark: its img/s, not a guess
    assert by_id["train.P1F4"].source == f"benchmark {bench.name}"
    # adversarial training costs more than standard per image, same model and images
    assert by_id["train.P1F4"].gpu_hours > by_id["train.P1F3"].gpu_hours
    flops = job_costs(jobs, out=tmp_path, benchmark_csvs=[], tflops=50.0)
    assert {c.source for c in flops if c.job != REPORT} == {"flops at 50 TFLOPS (assumed)"}
    assert forward_flops("preact_tiny") > 1e6
    double = job_costs(jobs, out=tmp_path, benchmark_csvs=[], tflops=100.0)

    def work(costs):
        return sum(c.gpu_hours for c in costs if c.job != REPORT)

    assert work(double) == pytest.approx(work(flops) / 2, rel=1e-6)  # twice as fast


def test_dry_run_prints_the_plan_and_runs_nothing(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "reproduce", "smoke", "--out",
                             str(tmp_path / "out"), "--dry-run", "--plan-gpus", "1,4")  # fmt: skip
    assert code == 0, err
    assert "train.rotation-P3F4" in out and "GPU-hours" in out and "assumed" in out
    assert not (tmp_path / "out").exists()
    code, _, err = run_cli(monkeypatch, capsys, "reproduce", "smoke", "--out", str(tmp_path),
                           "--dry-run", "--plan-gpus", "0")  # fmt: skip
    assert_one_line_error(code, err, "must be >= 1")


def test_launcher_settings_from_suite_file_and_command_line(tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text((REPO / "suites" / "smoke.toml").read_text()
                     + '\n[launcher]\npartition = "gpu"\ngpus_per_job = 2\n')  # fmt: skip
    load_suite(suite)  # a [launcher] table is allowed in a suite
    config = tmp_path / "cluster.toml"
    config.write_text('account = "lab"\nsetup = ["module load cuda"]\ngpus_per_job = 4\n')
    settings = load_launcher(suite, config).override(time_minutes=90, partition=None)
    assert (settings.partition, settings.gpus_per_job, settings.account) == ("gpu", 4, "lab")
    assert settings.setup == ("module load cuda",) and settings.time_minutes == 90
    with pytest.raises(ConfigError, match="unknown key"):
        load_launcher(None, _write(tmp_path / "typo.toml", "partiton = 'gpu'\n"))
    with pytest.raises(ConfigError, match="must be >= 1"):
        LauncherConfig(cpus_per_job=0)
    bad_suite = _write(tmp_path / "bad.toml", suite.read_text() + "gpus = 1\n")
    with pytest.raises(ConfigError, match=r"launcher\.gpus: unknown key"):
        load_suite(bad_suite)


def _write(path, text):
    path.write_text(text)
    return path


def test_local_launcher_refuses_gpus_per_job_over_one(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "reproduce", "smoke", "--out",
                           str(tmp_path / "out"), "--launcher", "local", "--jobs", "2",
                           "--gpus-per-job", "2")  # fmt: skip
    assert_one_line_error(code, err, "--gpus-per-job 2 is for --launcher slurm")
    assert not (tmp_path / "out").exists()  # refused before anything was written
