"""The gradient-masking cross-check: a gradient-free attack on a fixed subset, beside PGD.

Gradient attacks trust the model's gradients. A model that hides them (NaN or zero input
gradients, a detached or quantised input, a saturated output) leaves PGD nowhere to go and
gets an RA that looks like robustness. Square (robench/attacks/square.py) never reads a
gradient: on an honest model a few hundred queries are weaker than PGD-20, so the points it
fools and PGD did not are few; many of them are the signature of masking (Athalye et al.
2018; Croce & Hein 2020 run Square inside AutoAttack for the same reason).

Every white-box row runs it on a seeded subset of `images` test images (min of that and
n_eval) with `queries` queries, both recorded in the row; like AutoAttack, it attacks only
the subset's images the white-box attack left robust (the others are fooled either way).
k points fooled by Square but not by the white-box attack give
`gradient_masking_suspected:k/n` when k > margin * n (and k >= MIN_SUSPECT), and `worst_ra`
counts those points as fooled (the worst case over both attacks, on all n_eval images).
A non-trivially accurate model on which the attack changed no prediction at all is flagged
`attack_changed_no_prediction`: no honest model is untouched by PGD at eps 8/255.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from robench.columns import Column
from robench.config import AttackSpec
from robench.eval.suites.base import CLEAN, EvalOptions, Evaluation, Scorer, subset_indices

MIN_SUSPECT = 2  # fewer points than this are never "beyond the margin", however small n is
MIN_UNTOUCHED = 10  # correct images below which "changed no prediction" means nothing
MIN_UNTOUCHED_TA = 20.0  # % clean accuracy below which a model is trivially inaccurate

COLUMNS = (
    Column("cross_check", "string", "gradient-free cross-check attack, e.g. square-linf"),
    Column("cross_check_n", "Int64", "test images the cross-check attacked (a seeded subset)"),
    Column("cross_check_queries", "Int64", "queries per image of the cross-check"),
    Column(
        "cross_check_fooled",
        "Int64",
        "subset images the cross-check fooled and the white-box attack did not",
    ),
)


@dataclass(frozen=True)
class CrossCheck:
    attack: str
    queries: int
    margin: float
    indices: np.ndarray  # of the subset within the n_eval images
    white_box: np.ndarray  # robust under the white-box attack, on the subset
    gradient_free: np.ndarray  # robust under the cross-check, on the subset

    @property
    def fooled_only_by_cross_check(self) -> int:
        return int((self.white_box & ~self.gradient_free).sum())

    @property
    def suspected(self) -> bool:
        allowed = max(MIN_SUSPECT - 1, math.floor(self.margin * len(self.indices)))
        return self.fooled_only_by_cross_check > allowed

    def worst(self, robust: np.ndarray) -> np.ndarray:
        """`robust` (all n_eval images) with the subset's cross-check failures counted."""
        worst = robust.copy()
        worst[self.indices] &= self.gradient_free
        return worst

    def columns(self) -> dict[str, Any]:
        return {
            "cross_check": self.attack,
            "cross_check_n": len(self.indices),
            "cross_check_queries": self.queries,
            "cross_check_fooled": self.fooled_only_by_cross_check,
        }

    def flags(self) -> list[str]:
        k, n = self.fooled_only_by_cross_check, len(self.indices)
        return [f"gradient_masking_suspected:{k}/{n}"] if self.suspected else []


OFF_COLUMNS = {"cross_check": "off", "cross_check_n": 0, "cross_check_queries": 0}


def cross_check_evaluations(
    white_box: Evaluation, options: EvalOptions, *, sliced: bool
) -> list[Evaluation]:
    """What the cross-check of `white_box` measures: unless the white-box flags of all images
    are `sliced` to the seeded subset, the white-box attack on it; then Square on the subset's
    images the white-box attack left robust (only those can show what it missed)."""
    cfg = options.cross_check
    if cfg.images == 0:
        return []
    assert white_box.attack is not None, "the cross-check needs a white-box attack"
    params = white_box.attack.params
    norm = str(params.get("norm", "linf"))
    subset = (cfg.images, options.seed)
    first = [] if sliced else [
        replace(white_box, name=f"{white_box.name}_subset", subset=subset)
    ]  # fmt: skip
    square = Evaluation(
        f"cross_check_square_{norm}",
        AttackSpec("square", {"eps": float(params["eps"]), "queries": cfg.queries, "norm": norm}),
        subset=subset,
        survivors_of=first[0] if first else white_box,
    )
    return [*first, square]


def cross_check(
    scorer: Scorer, white_box: Evaluation, robust: np.ndarray | None = None
) -> CrossCheck | None:
    """Square on the seeded subset against `white_box` (an L-inf or L2 attack evaluation).

    `robust`: the white-box robust flags on all n_eval images when they were computed anyway
    (the subset's are sliced from them); otherwise the white-box attack runs on the subset.
    None when the options turn the cross-check off.
    """
    evaluations = cross_check_evaluations(white_box, scorer.options, sliced=robust is not None)
    if not evaluations:
        return None
    *subset_white_box, square = evaluations
    assert square.subset is not None and square.attack is not None
    n = len(robust) if robust is not None else len(scorer.flags(CLEAN).clean)
    indices = subset_indices(n, *square.subset)
    white = scorer.flags(subset_white_box[0]).measured if robust is None else robust[indices]
    free = np.ones_like(white)  # what PGD fooled needs no second attack: fooled either way
    if white.any():
        free[white] = scorer.flags(square).measured
    return CrossCheck(
        attack=f"square-{square.attack.params['norm']}",
        queries=int(square.attack.params["queries"]),
        margin=scorer.options.cross_check.margin,
        indices=indices,
        white_box=white,
        gradient_free=free,
    )


def check_columns(check: CrossCheck | None) -> dict[str, Any]:
    """A row's cross-check columns (`off` when turned off)."""
    return check.columns() if check is not None else {**OFF_COLUMNS, "cross_check_fooled": None}


def masking_flags(check: CrossCheck | None, clean: np.ndarray, robust: np.ndarray) -> list[str]:
    """What a white-box row's flags gain from its cross-check and `untouched_flags`."""
    return (["cross_check_off"] if check is None else check.flags()) + untouched_flags(
        clean, robust
    )


def untouched_flags(clean: np.ndarray, robust: np.ndarray) -> list[str]:
    """`attack_changed_no_prediction` for a non-trivially accurate model the attack left as it
    was: every correctly classified image still correct."""
    ta = 100 * float(np.mean(clean)) if len(clean) else 0.0
    untouched = np.array_equal(clean, robust)
    if untouched and int(clean.sum()) >= MIN_UNTOUCHED and ta >= MIN_UNTOUCHED_TA:
        return ["attack_changed_no_prediction"]
    return []
