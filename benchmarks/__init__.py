"""Speed benchmarks for robench (not part of the installed package; run from the repo root).

`python -m benchmarks.train_speed` times robench's fast path against a plain reference loop
and torchattacks, side by side in one run; see benchmarks/README.md.
"""
