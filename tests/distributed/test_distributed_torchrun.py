"""Two processes (torchrun, gloo on the CPU) compute what one process computes.

The same tiny suite is trained once by one process and once by `torchrun --nproc_per_node 2`,
and the same run is evaluated (`eval --suite pgd20`) both ways. The single process runs the
command inside pytest (one thread, like each torchrun worker), which saves a Python start.

Tolerances, and why:
- Training: each rank's gradient is summed over its slice of the batch (15 and 16 of 31
  images) and BatchNorm combines per-rank statistics, so float32 sums run in another order
  than one process's: the numbers agree to rounding, not bit for bit (in float64 the same
  two-process training matches one process to 1e-15, checked by hand). Per-epoch losses must
  agree within 1e-4 (seen: <= 2e-6 on one machine, <= 3.9e-5 on an AMD EPYC with AVX-512)
  and weights and BatchNorm statistics within 5e-3 relative (seen: <= 2.4e-5 on the first,
  <= 2.3e-3 on the EPYC, whose float32 kernels round differently and whose rounding 8 SGD
  steps amplify: already 3e-4 after 4 steps); validation TA/RA within one validation image,
  because an image on a decision boundary could flip on a rounding difference (seen:
  identical). The optimiser's momentum buffers hold the latest gradients, which this toy's
  float32 training makes sensitive to rounding (one process alone, float32 against float64,
  differs by far more): they must agree within 1e-1 (seen: <= 3.3e-3, and 4.4e-2 on the
  EPYC). A real sharding bug (gradients not averaged across ranks, or summed twice, or
  slices that miss images) changes each step's gradient by the order of the gradient itself,
  and the weights by the order of lr * gradient a step (5e-3 to 5e-2 here).
- The training attack is PGD with step size 0, i.e. its random start alone, drawn for the
  global batch and sliced so each example starts where one process starts it (also tested
  directly below). PGD *steps* take the sign of input gradients, which turns a 1e-7 rounding
  difference into a 2/255 pixel change, so adversarial training with steps drifts apart
  after a few steps (seen: ~1e-3 in the loss after 4 steps): inherent, and not tested.
- Evaluation: each rank attacks whole batches with the batch's own seeded generator, exactly
  the arithmetic of one process, so flags, TA and RA must be identical.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import suite_toml

import robench
from robench.attacks.pgd import PGD
from robench.cli import main
from robench.distributed import DistContext
from robench.runs import checkpoint as ckpt
from robench.train import finetune as trainer_mod

from synthetic import make_image_folder

SUITE = suite_toml(
    epochs=2,
    batch_size=31,  # odd: the two ranks get 15 and 16 images of a batch
    lr=0.05,
    train_subset=124,
    val_ra_subset=20,
    eval_n=64,
    eval_batch_size=16,
    train_attack={"step_size": "0", "steps": 2},
    val_attack={"steps": 2},
    pretrain_protocol={"epochs": 1, "batch_size": 32, "val_subset": 20},
    runs={
        "P1F4": {"finetune": "F4"},
        "rotation-P2F1": {"pretrain": "std:rotation", "finetune": "F1"},
        # P1F4 again: one process stops it mid-epoch, two processes finish it
        "P1F4-resumed": {"finetune": "F4"},
    },
)

RUNS = ("P1F4", "rotation-P2F1")
LOSS_TOL = 1e-4
WEIGHT_TOL = 5e-3
MOMENTUM_TOL = 1e-1
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _in_process(*args: str) -> int:
    """`robench ARGS` in this process, on one thread; its exit code."""
    argv, threads = sys.argv, torch.get_num_threads()
    sys.argv = ["robench", *args]
    torch.set_num_threads(1)
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)
    return 0


def _torchrun(
    *args: str, nproc: int, cwd: Path, target: tuple[str, ...] = ("-m", "robench")
) -> subprocess.CompletedProcess:
    """`robench ARGS` (or another `target`) under torchrun with `nproc` CPU processes (gloo)."""
    repo = str(Path(robench.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])),
    }
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        *target,
    ]
    result = subprocess.run(
        [*launcher, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


class Interrupted(Exception):
    pass


def _interrupt_after_partial_checkpoints(monkeypatch: pytest.MonkeyPatch, how_many: int) -> None:
    """Let `how_many` mid-epoch checkpoints be written, then stop the run like a crash would."""
    real = trainer_mod.run_epoch
    saved = {"n": 0}

    def run_epoch(*args, on_checkpoint, **kwargs):
        def save_then_die(progress):
            on_checkpoint(progress)
            saved["n"] += 1
            if saved["n"] == how_many:
                raise Interrupted

        return real(*args, on_checkpoint=save_then_die, **kwargs)

    monkeypatch.setattr(trainer_mod, "run_epoch", run_epoch)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """One process trains P1F4 and rotation-P2F1, and P1F4-resumed up to epoch 2, step 3;
    then one torchrun of two processes trains all three (resuming P1F4-resumed)."""
    root = tmp_path_factory.mktemp("ddp")
    data = make_image_folder(root / "data", train_per_class=20, test_per_class=8)
    suite = root / "suite.toml"
    suite.write_text(SUITE)
    # 4 steps an epoch; a mid-epoch checkpoint (global sums under torchrun) at step 3
    args = ("train", str(suite), "--data-dir", str(data), "--device", "cpu")
    args += ("--checkpoint-every", "3")
    one, two = ("--out", str(root / "nproc1")), ("--out", str(root / "nproc2"))
    assert _in_process(*args, *one, "--only", "P1F4", "--only", "rotation-P2F1") == 0
    with pytest.MonkeyPatch.context() as monkeypatch:
        _interrupt_after_partial_checkpoints(monkeypatch, how_many=2)  # epoch 2, step 3
        with pytest.raises(Interrupted):
            _in_process(*args, *two, "--only", "P1F4-resumed")
    _, partial = ckpt.load_checkpoint(root / "nproc2" / "P1F4-resumed" / "checkpoints" / "partial")
    stdout = _torchrun(*args, *two, nproc=2, cwd=root).stdout
    return {"root": root, "data": data, "stdout": stdout, "partial": partial}


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _assert_same_training(one: Path, two: Path) -> None:
    m1, m2 = _metrics(one), _metrics(two)
    assert [r["epoch"] for r in m1] == [r["epoch"] for r in m2] == [1, 2]
    for a, b in zip(m1, m2, strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) <= LOSS_TOL, (a, b)
        assert abs(a["train_acc"] - b["train_acc"]) <= 100 / 124 + 1e-9, (a, b)
        for key, n in (("val_ta", a["val_n"]), ("val_ra", a["val_ra_n"])):
            assert abs(a[key] - b[key]) <= 100 / n + 1e-9, (key, a, b)
    w1, _ = ckpt.load_checkpoint(one / "checkpoints" / "last")
    w2, _ = ckpt.load_checkpoint(two / "checkpoints" / "last")
    assert w1.keys() == w2.keys()
    for key in w1:
        diff = (w1[key].double() - w2[key].double()).abs().max().item() if w1[key].numel() else 0
        tol = MOMENTUM_TOL if key.endswith("momentum_buffer") else WEIGHT_TOL
        assert diff <= tol * max(1.0, w1[key].abs().max().item()), (key, diff)


@pytest.mark.slow
@pytest.mark.parametrize("run", RUNS)
def test_two_processes_train_what_one_trains(trained, run):
    one, two = (trained["root"] / f"nproc{n}" / run for n in (1, 2))
    _assert_same_training(one, two)
    w1, _ = ckpt.load_checkpoint(one / "checkpoints" / "last")
    w2, _ = ckpt.load_checkpoint(two / "checkpoints" / "last")
    config = json.loads((two / "config.json").read_text())
    assert config["runtime"]["world_size"] == 2 and config["runtime"]["sync_bn"] is True
    if run == "rotation-P2F1":  # the frozen trunk is the pretrained one, bit for bit
        trunk = [k for k in w1 if k.startswith("model.trunk.")]
        assert trunk and all(torch.equal(w1[k], w2[k]) for k in trunk)


@pytest.mark.slow
def test_two_processes_resume_what_one_process_left_mid_epoch(trained):
    assert (trained["partial"]["epoch"], trained["partial"]["progress"]["step"]) == (2, 3)
    assert "P1F4-resumed: resuming epoch 2 after step 3" in trained["stdout"]
    root = trained["root"]
    _assert_same_training(root / "nproc1" / "P1F4", root / "nproc2" / "P1F4-resumed")


@pytest.mark.slow
def test_only_rank_zero_prints_and_writes(trained):
    stdout = trained["stdout"]
    for run in RUNS:
        for epoch in (1, 2):
            assert stdout.count(f"{run} epoch   {epoch} ") == 1, stdout
    files = sorted(p.name for p in (trained["root"] / "nproc2").rglob("*") if p.is_file())
    assert not [name for name in files if name.endswith(".tmp")], files


@pytest.mark.slow
def test_sharded_pgd20_eval_gives_identical_flags(trained):
    root = trained["root"]
    rows = {}
    for nproc in (1, 2):
        run = root / f"eval{nproc}" / "P1F4"
        shutil.copytree(root / "nproc1" / "P1F4", run)  # no flags from an earlier evaluation
        boards = root / f"boards{nproc}"
        # --batch-size 24: batches of 24, 24, 16 images; the second round has one batch for
        # two ranks, so a rank sits one round out and the last batch is short. eps 1/255: the
        # toy model keeps some robust images, so the robust flags are not all False.
        args = ("eval", str(run), "--suite", "pgd20", "--leaderboard-dir", str(boards))
        extra = ("--batch-size", "24", "--eps", "1/255", "--step-size", "1/1020")
        extra += ("--data-dir", str(trained["data"]), "--device", "cpu")
        if nproc == 1:
            assert _in_process(*args, *extra) == 0
        else:
            _torchrun(*args, *extra, nproc=nproc, cwd=root)
        rows[nproc] = pd.read_csv(boards / "pgd20.csv").iloc[0]
        flags = sorted((run / "eval").glob("*.npz"))
        rows[nproc]["flags_arrays"] = [np.load(f)["flags"] for f in flags]
    one, two = rows[1], rows[2]
    assert (one.ta, one.ra, one.n_eval) == (two.ta, two.ra, two.n_eval)
    assert (one.worst_ra, one.cross_check_fooled) == (two.worst_ra, two.cross_check_fooled)
    assert one.n_eval == 64 and 0 < one.ra < one.ta
    # clean, PGD-20, and the Square cross-check on the images PGD-20 left (sharded as well)
    assert len(one.flags_arrays) == len(two.flags_arrays) == 3
    for a, b in zip(one.flags_arrays, two.flags_arrays, strict=True):
        assert len(a) in (64, round(one.ra * 64 / 100)) and np.array_equal(a, b)


@pytest.mark.parametrize("rank", [0, 1])
def test_bad_input_under_torchrun_is_one_line_from_rank_zero(monkeypatch, capsys, tmp_path, rank):
    """Input errors come before any process group: rank 0 prints one line, the others none."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "2")
    bad = tmp_path / "bad.toml"
    bad.write_text(SUITE.replace("epochs = 2", "epochs = [2"))
    assert _in_process("train", str(bad), "--out", str(tmp_path / "o")) == 2
    out, err = capsys.readouterr()
    assert out == ""
    if rank == 0:
        assert len(err.strip().splitlines()) == 1 and "not valid TOML" in err, err
    else:
        assert err == ""


def test_pgd_shard_starts_each_row_where_one_process_does():
    """A rank's slice gets the rows of the global batch's random start (L-inf and L2)."""
    x = torch.rand(10, 3, 8, 8)
    for norm, eps in (("linf", 8 / 255), ("l2", 0.5)):
        attack = PGD(eps, 0.0, 0, norm=norm)
        full = attack._random_delta(x, torch.Generator().manual_seed(3))
        for rank in range(3):
            shard = DistContext(rank, 3).shard(len(x))
            part = attack._random_delta(shard.take(x), torch.Generator().manual_seed(3), shard)
            assert torch.equal(part, shard.take(full))


FLAGS_SCRIPT = """
import sys
import numpy as np, torch
from torch import nn
from robench import distributed
from robench.attacks import build_attack
from robench.config import AttackConfig
from robench.data import ArrayDataset
from robench.flags import compute_flags
from robench.runs import FlagStore
from robench.runtime import Runtime

runtime = Runtime.select("cpu")  # joins the gloo group torchrun describes
rng = np.random.default_rng(0)
data = ArrayDataset(rng.integers(0, 256, (26, 8, 8, 3), dtype=np.uint8), rng.integers(0, 3, 26),
                    ("a", "b", "c"))
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(192, 3)).eval()
out = {}
for name, distributable in (("pgd", True), ("aa", False)):
    attack = build_attack(AttackConfig(steps=3))
    attack.distributable = distributable
    store = FlagStore(sys.argv[1], writable=distributed.current().is_main).file(name, {}, 26)
    flags = compute_flags(model, data, runtime=runtime, batch_size=8, attack=attack, seed=5,
                          store=store, keep_examples=True, dist=distributed.current())
    out[name + "_robust"] = flags.robust
    if flags.examples is not None:
        out[name + "_examples"] = flags.examples.numpy()
rank = distributed.current().rank
np.savez(f"{sys.argv[1]}/rank{rank}.npz", **out)
distributed.shutdown()
"""


@pytest.mark.slow
def test_kept_examples_and_a_rank_0_attack_under_torchrun_match_one_process(tmp_path):
    """Two ranks share the PGD batches and gather (and store) the same flags and examples
    as one process; an attack that cannot be shared runs on rank 0 and the other rank reads
    its flags back. Only rank 0 returns the kept examples (it wrote them)."""
    script = tmp_path / "flags_script.py"
    script.write_text(FLAGS_SCRIPT)
    for nproc, folder in ((1, tmp_path / "one"), (2, tmp_path / "two")):
        folder.mkdir()
        _torchrun(str(folder), nproc=nproc, cwd=tmp_path, target=(str(script),))
    one = np.load(tmp_path / "one" / "rank0.npz")
    two = [np.load(tmp_path / "two" / f"rank{r}.npz") for r in (0, 1)]
    for name in ("pgd", "aa"):
        for rank in two:
            assert np.array_equal(rank[f"{name}_robust"], one[f"{name}_robust"]), name
        assert np.array_equal(two[0][f"{name}_examples"], one[f"{name}_examples"]), name
        assert f"{name}_examples" not in two[1]
    assert one["pgd_robust"].sum() < 26  # the attack fooled something: the match means much
