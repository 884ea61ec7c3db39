"""The CPU rehearsal of benchmarks/gpu_check.sh (`--dry-run`): every part on tiny sizes.

The inputs folder is built as benchmarks/gpu_inputs.sh builds it, but with a small packed
image folder instead of the 55 MiB CIFAR-10 copy: pack_folder.py (../shared/data) packs it,
and the script unpacks it, as on the GPU machine. The last part is given a budget it cannot
meet, so the rehearsal also shows a part stopped at its budget and the summary written after.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import REPO

from synthetic import make_image_folder

pytestmark = [pytest.mark.slow, pytest.mark.external]


def _inputs(tmp_path: Path) -> Path:
    external = os.environ.get("ROBENCH_EXTERNAL")
    data = os.environ.get("ROBENCH_DATA")
    packer = Path(data).parent / "pack_folder.py" if data else None
    if not external or packer is None or not packer.is_file():
        pytest.skip("needs ROBENCH_EXTERNAL and pack_folder.py beside $ROBENCH_DATA (../shared)")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(packer, inputs / "pack_folder.py")
    shutil.copy(Path(external) / "resnet20-adv.pth", inputs / "resnet20-adv.pth")
    # the smoke suite's subsets: 256 training, 128 validation (a tenth of train), 64 test images
    folder = make_image_folder(tmp_path / "images", train_per_class=130, test_per_class=7)
    subprocess.run(["python3", str(packer), "pack", str(folder), str(inputs / "cifar10-jpeg.npz")],
                   check=True, capture_output=True)  # fmt: skip
    return inputs


def test_the_rehearsal_runs_every_part_and_leaves_at_most_8_files(tmp_path):
    inputs, out = _inputs(tmp_path), tmp_path / "out"
    env = {**os.environ, "GPU_CHECK_WORK": str(tmp_path / "work"), "GPU_CHECK_BUDGET_E": "8"}
    env.pop("ROBENCH_DATA", None)  # the script must use the data it unpacked
    done = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(out),
         "--inputs", str(inputs)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=420,
    )  # fmt: skip
    log = (out / "gpu_check.log").read_text() if (out / "gpu_check.log").is_file() else ""
    assert done.returncode == 0, done.stderr + log[-3000:]
    summary = (out / "summary.md").read_text()
    rows = {line[2]: line for line in summary.splitlines() if re.match(r"\| [a-e] \|", line)}
    assert set(rows) == {"a", "b", "c", "d", "e"}, summary
    for part in "abcd":
        assert "| ok |" in rows[part], f"part {part}: {rows[part]}\n{log[-3000:]}"
    assert "stopped at 8s budget" in rows["e"], rows["e"]
    assert "| preact_tiny | " in summary and "no target" in summary  # the speed targets' table
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in files), files
    assert "gpu none" in (out / "env.txt").read_text()  # the rehearsal ran on the CPU
    with open(out / "train-speed.csv") as handle:
        speed = list(csv.DictReader(handle))
    assert {r["implementation"] for r in speed} >= {"robench", "reference", "torchattacks"}
    with open(out / "pgd20-precision.csv") as handle:
        precision = list(csv.DictReader(handle))
    assert [r["precision"] for r in precision] == ["fp32", "bf16"]
    assert all(r["n_eval"] == "20" and r["run"] == "resnet20-adv" for r in precision)
    # a second call continues the reduced runs where the budget stopped them
    again = tmp_path / "again"
    env["GPU_CHECK_BUDGET_E"] = "120"
    done = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry-run", "--out", str(again),
         "--inputs", str(inputs), "--parts", "e"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    summary = (again / "summary.md").read_text()
    assert done.returncode == 0 and "| e | reduced: P1F4, rotation-P3F4 | ok |" in summary, summary
    assert "| a |" not in summary  # only the part asked for
    with open(again / "reduced-progress.csv") as handle:
        progress = {r["run"]: r for r in csv.DictReader(handle)}
    assert progress["P1F4"]["epochs_done"] == progress["rotation-P3F4"]["epochs_done"] == "2"
