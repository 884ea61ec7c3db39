#!/usr/bin/env bash
# One prepared check for a short GPU window (issue #17): at most 9 minutes on one H100/H200,
# so a second try fits in a 15-minute window. Run from the repository root:
#
#   bash benchmarks/gpu_check.sh [--out DIR] [--inputs DIR] [--dry-run] [--parts abcde]
#
# --inputs (default .gpu-inputs, made by `bash benchmarks/gpu_inputs.sh`): cifar10-jpeg.npz and
#   pack_folder.py (../shared/data), resnet20-adv.pth (../shared/external) and wheels/ with
#   the packages the GPU machine lacks. --out (default $OUT): everything it writes, as it goes.
# --dry-run: the CPU rehearsal. Every part on tiny sizes, in under 5 minutes.
# --parts: the parts to run (default all), e.g. `--parts e` to continue the reduced runs.
#
# Parts, each with its own budget (seconds; GPU_CHECK_BUDGET_<PART>=S overrides one); a part
# that overruns is stopped and the next one starts:
#   a  environment: GPU, driver, torch, CUDA
#   b  pytest -m "gpu or fastpath" on the GPU
#   c  benchmarks.train_speed: PreAct ResNet-18 and ResNet-50v2, robench vs the reference
#      loop vs torchattacks (PGD-10 AT, standard training, PGD-20 on 10k, AutoAttack on 1k),
#      ratios, TFLOP/s and the fraction of bf16 peak
#   d  PGD-20 RA of one model (the external adversarial ResNet-20) in bf16 and in fp32, on the
#      same 1,000 test images of the JPEG q75 copy
#   e  the reduced suite's P1F4 and rotation-P3F4 for as many epochs as the time left allows;
#      resumable: a later call on the same machine ($GPU_CHECK_WORK survives) continues it
# It ends with a summary table (summary.md) and leaves at most 8 files in the output folder.
set -uo pipefail

DRY=0
OUT_DIR="${OUT:-}"
INPUTS=".gpu-inputs"
WANTED=abcde
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT_DIR="${2:?--out needs a folder}"; shift ;;
    --inputs) INPUTS="${2:?--inputs needs a folder}"; shift ;;
    --parts) WANTED="${2:?--parts needs letters from abcde}"; shift ;;
    *) echo "gpu_check: unknown argument $1 (--out DIR, --inputs DIR, --dry-run, --parts abcde)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$OUT_DIR" ] || { echo "gpu_check: no output folder (--out DIR or \$OUT)" >&2; exit 2; }
[ -d "$INPUTS" ] || { echo "gpu_check: no inputs folder $INPUTS (bash benchmarks/gpu_inputs.sh)" >&2; exit 2; }
mkdir -p "$OUT_DIR" 2>/dev/null && [ -w "$OUT_DIR" ] \
  || { echo "gpu_check: cannot write to the output folder $OUT_DIR" >&2; exit 2; }
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
INPUTS="$(cd "$INPUTS" && pwd)"
WORK="${GPU_CHECK_WORK:-/tmp/robench-gpu-check}"
mkdir -p "$WORK"
LOG="$OUT_DIR/gpu_check.log"
PARTS="$WORK/parts.tsv"
: >"$PARTS"
START=$(date +%s)
export PYTHONUNBUFFERED=1

if [ "$DRY" = 1 ]; then
  TOTAL="${GPU_CHECK_TOTAL:-270}" DEVICE=cpu
  declare -A BUDGET=([a]=20 [b]=60 [c]=90 [d]=60 [e]=30)
else
  TOTAL="${GPU_CHECK_TOTAL:-530}" DEVICE=cuda
  declare -A BUDGET=([a]=20 [b]=90 [c]=240 [d]=60 [e]=0)  # e: whatever is left
fi
for part in a b c d e; do
  override="GPU_CHECK_BUDGET_${part^^}"
  [ -n "${!override:-}" ] && BUDGET[$part]="${!override}"
done

say() { echo "[gpu_check +$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }

# part NAME TITLE COMMAND...: run COMMAND under its budget; record status and seconds
part() {
  local name="$1" title="$2"
  shift 2
  [[ "$WANTED" == *"$name"* ]] || return 0
  local budget="${BUDGET[$name]}"
  local left=$(( TOTAL - ($(date +%s) - START) ))
  if [ "$budget" = 0 ] || [ "$budget" -gt "$left" ]; then budget=$left; fi
  if [ "$budget" -lt 5 ]; then
    printf '%s\t%s\tskipped (no time left)\t0\t%s\n' "$name" "$title" "$budget" >>"$PARTS"
    say "part $name ($title): skipped, ${left}s left"
    return
  fi
  say "part $name ($title): budget ${budget}s"
  local t0 rc status
  t0=$(date +%s)
  if declare -F "$1" >/dev/null; then  # a function of this script: timeout runs programs
    timeout --signal=TERM --kill-after=15 "$budget" bash -c "$(declare -f "$1"); $1" >>"$LOG" 2>&1
  else
    timeout --signal=TERM --kill-after=15 "$budget" "$@" >>"$LOG" 2>&1
  fi
  rc=$?
  case "$rc" in
    0) status=ok ;;
    124 | 137) status="stopped at ${budget}s budget" ;;
    *) status="failed (exit $rc)" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$title" "$status" "$(( $(date +%s) - t0 ))" "$budget" >>"$PARTS"
  say "part $name: $status"
}

# -- setup: wheels the machine lacks, the data unpacked once ------------------------------
if compgen -G "$INPUTS/wheels/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" "$INPUTS"/wheels/*.whl >>"$LOG" 2>&1 || say "wheels: install failed"
  export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DATA="$WORK/cifar10-jpeg"
if [ ! -d "$DATA/test" ]; then
  python3 "$INPUTS/pack_folder.py" unpack "$INPUTS/cifar10-jpeg.npz" "$DATA" >>"$LOG" 2>&1 \
    || say "data: unpack failed"
fi
export ROBENCH_DATA="$DATA" ROBENCH_CACHE="$WORK/cache"
export DRY DEVICE DATA WORK INPUTS OUT_DIR  # the parts' functions run in a child bash
say "setup done (device $DEVICE, total budget ${TOTAL}s)"

# -- a: environment -----------------------------------------------------------------------
env_report() {
  { date -u +%FT%TZ; uname -a; nvidia-smi 2>&1 | head -20
    python3 - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB", f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs")
else:
    print("gpu none")
EOF
  } >"$OUT_DIR/env.txt" 2>&1
  cat "$OUT_DIR/env.txt"
}
part a "environment" env_report

# -- b: the GPU and fast-path tests -------------------------------------------------------
if [ "$DRY" = 1 ]; then
  PYTEST_K=(-k "forced_on_the_cpu_only_when_asked or no_weight_gradients")
else
  PYTEST_K=()
fi
part b "pytest -m 'gpu or fastpath'" bash -c \
  'python3 -m pytest -q -p no:cacheprovider -m "gpu or fastpath" "$@" tests 2>&1 | tee "'"$OUT_DIR"'/pytest.txt"; exit "${PIPESTATUS[0]}"' \
  _ "${PYTEST_K[@]}"

# -- c: speed against the reference loop and torchattacks ---------------------------------
if [ "$DRY" = 1 ]; then
  SPEED=(--device cpu --models preact_tiny --train-images 32 --eval-images 16 --aa-images 2
         --aa-attacks apgd-ce --batch-size 16 --data synthetic)
else
  SPEED=(--device cuda --eval-images 10000 --aa-images 1000 --fp32-eval-check)
fi
part c "train_speed" python3 -m benchmarks.train_speed "${SPEED[@]}" \
  --out "$OUT_DIR/train-speed.csv" --markdown

# -- d: PGD-20 in bf16 and fp32 on the same images ----------------------------------------
precision_check() {
  local n=1000
  [ "$DRY" = 1 ] && n=20
  for precision in fp32 bf16; do  # one board each: a board's row key has no precision
    rm -rf "$WORK/boards-$precision"
    python3 -m robench eval --model tests/external_resnet20.py:resnet20 \
      --weights "$INPUTS/resnet20-adv.pth" --name resnet20-adv --suite pgd20 --n "$n" \
      --precision "$precision" --device "$DEVICE" --data-dir "$DATA" \
      --leaderboard-dir "$WORK/boards-$precision" || return 1
  done
  { cat "$WORK/boards-fp32/pgd20.csv"; tail -n +2 "$WORK/boards-bf16/pgd20.csv"; } \
    >"$OUT_DIR/pgd20-precision.csv"
}
part d "PGD-20 bf16 vs fp32" precision_check

# -- e: the reduced suite, resumable -------------------------------------------------------
reduced_start() {
  local suite=reduced
  local -a extra=()
  [ "$DRY" = 1 ] && suite=smoke && extra=(--data-dir "$DATA")
  # `train` (no evaluation): the epochs are what the time buys; rerun continues mid-epoch
  python3 -m robench train "$suite" --out "$WORK/$suite" --only P1F4 --only rotation-P3F4 \
    --device "$DEVICE" --checkpoint-every 20 "${extra[@]}"
}
part e "reduced: P1F4, rotation-P3F4" reduced_start

# -- summary --------------------------------------------------------------------------------
python3 - "$WORK" "$OUT_DIR" "$PARTS" "$DEVICE" <<'EOF' | tee -a "$LOG"
import csv, json, sys
from pathlib import Path

work, out, parts, device = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
rows = [line.split("\t") for line in parts.read_text().splitlines() if line]
progress = []
for suite in ("reduced", "smoke"):
    for metrics in sorted((work / suite).glob("**/metrics.jsonl")):
        lines = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
        config = json.loads((metrics.parent / "config.json").read_text())
        spec = config.get("run") or config.get("pretraining") or {}  # fine-tuning / pretraining
        last = lines[-1] if lines else {}
        progress.append({
            "suite": suite, "run": metrics.parent.name, "epochs_done": len(lines),
            "epochs": spec.get("protocol", {}).get("epochs", ""),
            "val_ta": last.get("val_ta", last.get("val_pretext_acc", "")), "val_ra": last.get("val_ra", ""),
            "img_per_s": last.get("train_images_per_s", ""), "device": config.get("runtime", {}).get("device", device),
        })
if progress:
    with open(out / "reduced-progress.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(progress[0]))
        writer.writeheader()
        writer.writerows(progress)
lines = ["| part | what | status | seconds | budget |", "|---|---|---|---|---|"]
lines += ["| " + " | ".join(r) + " |" for r in rows]
for p in progress:
    rate = f"{float(p['img_per_s']):.0f}" if p["img_per_s"] != "" else "?"
    lines.append(f"\n{p['suite']}/{p['run']}: epoch {p['epochs_done']}/{p['epochs']}, "
                 f"val TA (pretext acc) {p['val_ta']}, RA {p['val_ra']}, {rate} img/s")
speed = out / "train-speed.csv"
# issue #17's targets on an H100/H200, PGD-10 AT per 45k-image epoch (seconds; x reference)
TARGETS = {"preact_resnet18": (15.0, 3.0), "preact_resnet50v2": (40.0, None)}
if speed.is_file():
    with open(speed) as handle:
        measured = list(csv.DictReader(handle))
    lines.append(f"\ntrain_speed: {len(measured)} rows in train-speed.csv")
    lines += ["", "| model | PGD-10 AT s/epoch | target | x reference | target | met |",
              "|---|---|---|---|---|---|"]
    for r in measured:
        if r["workload"] != "pgd10_at" or r["implementation"] != "robench":
            continue
        seconds, ratio = float(r["seconds"]), float(r["ratio_vs_reference"] or "nan")
        limit, times = TARGETS.get(r["model"], (None, None))
        met = "no target" if limit is None else (
            "yes" if seconds <= limit and (times is None or ratio >= times) else "NO")
        lines.append(f"| {r['model']} | {seconds:.1f} | {limit or '-'} | {ratio:.2f} | "
                     f"{times or '-'} | {met} |")
text = "\n".join(lines) + "\n"
(out / "summary.md").write_text(text)
print(text)
files = [p for p in out.rglob("*") if p.is_file()]
big = [p.name for p in files if p.stat().st_size > 16 * 2**20]
print(f"{len(files)} files in {out}" + (f"; over 16 MiB: {big}" if big else ""))
EOF
FILES=$(find "$OUT_DIR" -type f | wc -l)
[ "$FILES" -le 8 ] || say "warning: $FILES files in $OUT_DIR (at most 8 come back)"
say "done in $(( $(date +%s) - START ))s"
