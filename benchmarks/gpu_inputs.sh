#!/usr/bin/env bash
# The inputs benchmarks/gpu_check.sh reads on a GPU machine that has no registry and no
# ../shared: the packed CIFAR-10 JPEG copy, its unpacker, the external adversarial ResNet-20,
# and wheels of the packages that machine lacks (it has torch, torchvision, pandas, rich,
# typer, scipy, statsmodels, safetensors, huggingface_hub, filelock; not these).
#
#   bash benchmarks/gpu_inputs.sh [DIR]      # default .gpu-inputs (ignored by git: carry it)
#
# About 60 MiB, under the 64 MiB a device call carries with the working tree.
set -euo pipefail

DIR="${1:-.gpu-inputs}"
SHARED="${ROBENCH_SHARED:-../shared}"
PYTHON_VERSION="${GPU_PYTHON_VERSION:-3.12}"  # the GPU machine's python3
WHEELS=(torchattacks==3.5.1 pyautoattack==0.2.0 submitit==1.5.4 platformdirs==4.14.9)

mkdir -p "$DIR/wheels"
cp "$SHARED/data/cifar10-jpeg.npz" "$SHARED/data/pack_folder.py" "$DIR/"
cp "$SHARED/external/resnet20-adv.pth" "$DIR/"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" \
  --implementation py --implementation cp -d "$DIR/wheels" "${WHEELS[@]}"
# pyautoattack's wheel carries a 44 MB example model (examples/model_test.pt) robench never
# reads: the same wheel without its examples/ folder (and their RECORD lines) fits the budget
python3 - "$DIR"/wheels/pyautoattack-*.whl <<'PY'
import sys, zipfile
from pathlib import Path

wheel = Path(sys.argv[1])
slim = wheel.with_suffix(".slim")
with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
    for item in src.infolist():
        if "/examples/" in item.filename:
            continue
        data = src.read(item)
        if item.filename.endswith(".dist-info/RECORD"):
            lines = data.decode().splitlines()
            data = ("\n".join(x for x in lines if "/examples/" not in x) + "\n").encode()
        dst.writestr(item, data)
slim.replace(wheel)
PY
if git rev-parse --git-dir >/dev/null 2>&1 && [ "$DIR" = .gpu-inputs ]; then
  grep -qx '/.gpu-inputs/' "$(git rev-parse --git-dir)/info/exclude" 2>/dev/null \
    || echo '/.gpu-inputs/' >>"$(git rev-parse --git-dir)/info/exclude"
fi
du -sh "$DIR"
ls "$DIR" "$DIR/wheels"
