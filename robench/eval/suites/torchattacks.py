"""torchattacks: clean accuracy and any torchattacks attack, through robench's evaluation.

    robench eval RUN --suite torchattacks --attack CW --attack-option steps=50 --attack-option c=0.1

The attack runs through the bridge (robench/attacks/torchattacks_bridge.py), so its flags
are stored and resumable, its numbers get intervals, and its rows carry the attack's class,
its options (`attack_options`, part of the key) and torchattacks' version. `--suite all`
does not run it: it has no attack until one is named.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from robench.columns import PROTOCOL_SHOWN, ROW_KEY, RUN_ROW_SHOWN, TA, Column, eval_board
from robench.config import AttackSpec
from robench.errors import ConfigError
from robench.eval.suites.base import (
    CLEAN,
    EvalOptions,
    EvalSuite,
    Evaluation,
    Rows,
    Scorer,
    add_flags,
)
from robench.eval.suites.cross_check import untouched_flags
from robench.eval.suites.registry import EVAL_SUITES
from robench.flags import percent

BOARD = eval_board(
    "torchattacks",
    (
        TA,
        Column("ra", "float64", "robust accuracy under the torchattacks attack, %"),
        Column("attack_options", "string", 'the attack\'s options as JSON, e.g. {"steps": 50}'),
        Column("torchattacks_version", "string", "torchattacks version that crafted the examples"),
    ),
    compared=("ta", "ra"),
    percent=("ta", "ra"),
    key=(*ROW_KEY, "attack_options"),
    shown=(*RUN_ROW_SHOWN, "ta", "ra", "attack_options", *PROTOCOL_SHOWN, "flags"),
)


def bridge_evaluation(options: EvalOptions) -> Evaluation:
    if options.bridge is None:
        raise ConfigError("--suite torchattacks needs --attack NAME (a torchattacks class)")
    name, params = options.bridge
    return Evaluation("torchattacks", AttackSpec("torchattacks", {"attack": name, **dict(params)}))


@EVAL_SUITES.register("torchattacks")
class TorchattacksSuite(EvalSuite):
    name = "torchattacks"
    order = 4
    in_all = False
    description = "clean accuracy and any torchattacks attack (--attack NAME --attack-option K=V)"
    board = BOARD
    refusal = (
        "the torchattacks suite takes the attack's own options: --attack-option eps=0.0157, "
        "not --eps/--steps/--step-size/--norm"
    )
    flag_metrics: ClassVar[dict[str, str]] = {"ta": "clean", "ra": "torchattacks"}

    def evaluations(self, options: EvalOptions) -> list[Evaluation]:
        return [CLEAN, bridge_evaluation(options)]

    def rows(self, scorer: Scorer) -> Rows:
        import torchattacks

        evaluation = bridge_evaluation(scorer.options)
        assert evaluation.attack is not None
        name, params = scorer.options.bridge or ("", ())
        options = dict(params)
        clean = scorer.flags(CLEAN).measured
        robust = scorer.flags(evaluation).measured
        row = scorer.row(self.name, _attack_columns(name, options), "")
        row.update(
            ta=percent(clean),
            ra=percent(robust),
            attack_options=json.dumps(options, sort_keys=True),
            torchattacks_version=torchattacks.__version__,
        )
        add_flags(row, untouched_flags(clean, robust))
        return {self.board.name: [row]}


def _attack_columns(name: str, options: dict[str, Any]) -> dict[str, Any]:
    eps = options.get("eps")
    return {
        "attack": f"torchattacks-{name}",
        "norm": ("l2" if "L2" in name else "linf") if eps is not None else "",
        "eps": _fraction(eps),
        "eps_value": None if eps is None else float(eps),
        "step_size": _fraction(options.get("alpha")),
        "steps": options.get("steps"),
        "restarts": 1,
    }


def _fraction(value: Any) -> str:
    """A budget as robench writes it: k/255 when it is one, else its decimal form."""
    if value is None:
        return ""
    steps = float(value) * 255
    return f"{round(steps)}/255" if abs(steps - round(steps)) < 1e-6 else repr(float(value))
