"""The eval-suite registry: `@EVAL_SUITES.register(name)` on each suite's class."""

from robench.eval.suites.base import EvalSuite
from robench.registry import Registry

EVAL_SUITES: Registry[EvalSuite] = Registry("eval suite")
