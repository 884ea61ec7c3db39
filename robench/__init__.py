"""robench: train and benchmark adversarially robust image classifiers.

From Python: `robench.evaluate(model)`, `robench.attack(model, x, y, "pgd", eps=8/255)`,
`robench.load(run_dir)`, `robench.write_report(folder)` (robench/api.py). They are imported on
first use, so `import robench` (and the command line's start) stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["EvalResult", "__version__", "attack", "evaluate", "load", "write_report"]
_API = ("EvalResult", "attack", "evaluate", "load", "write_report")


def __getattr__(name: str) -> Any:
    if name in _API:
        from robench import api

        return getattr(api, name)
    raise AttributeError(f"module 'robench' has no attribute {name!r}")
