#!/usr/bin/env bash
# Rerun the smoke reproduction and diff its leaderboards against leaderboards/ci/ ("check",
# what CI does), or replace the committed ones after an intentional change ("update").
# Needs ROBENCH_DATA (the CIFAR-10 image folder or torchvision root).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-check}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

robench reproduce suites/smoke.toml --out "$out" --device cpu > "$out/reproduce.log" 2>&1 \
  || { cat "$out/reproduce.log"; exit 1; }

status=0
for board in pgd20 table3 table5 table6 table7 table8 figure3; do
  if [ "$mode" = update ]; then
    cp "$out/leaderboards/$board.csv" "leaderboards/ci/$board.csv"
    echo "updated leaderboards/ci/$board.csv"
  else
    robench leaderboard diff "leaderboards/ci/$board.csv" "$out/leaderboards/$board.csv" \
      --tol 0.5 --format md || status=1
  fi
done
# The paper's claims judged on the smoke reproduction: kept beside the boards to read, not
# diffed (toy runs on 64 images: nearly every verdict is honestly "inconclusive").
if [ "$mode" = update ]; then
  cp "$out/claims.csv" leaderboards/ci/claims.csv
  echo "updated leaderboards/ci/claims.csv"
else
  python -c "import pandas as p, sys; c = p.read_csv(sys.argv[1]); print(c['verdict'].value_counts().to_string())" "$out/claims.csv"
fi
exit $status
