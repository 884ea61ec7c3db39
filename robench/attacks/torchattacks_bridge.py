"""Any torchattacks attack, by class name, as a robench attack (`torchattacks` in ATTACKS).

torchattacks (Kim 2020) has some forty attacks; robench's own are the paper's. Through this
bridge any of them runs with everything an evaluation gives: resumable per-example flags,
sanity checks, intervals, boards (`robench eval --suite torchattacks --attack CW`). The
class is looked up in the installed torchattacks and its options are checked against its
constructor's signature before anything runs, so a typo is one line, not a traceback later.

torchattacks draws random starts from torch's global generator; the bridge runs it inside
`torch.random.fork_rng`, seeded from the evaluation's per-batch generator, so a batch is
attacked the same way whenever it is (re)computed and the caller's random state is kept.
The result is checked against the threat model the options state: [0, 1] always, and the
L-inf (or, for an ...L2 class, L2) ball of `eps` when the attack takes one.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from robench.attacks.autoattack import AutocastLogits
from robench.attacks.base import Attack, generator_seed, own_global_rng
from robench.attacks.registry import ATTACKS
from robench.errors import ConfigError

TOLERANCE = 1e-5  # float slack of a projection onto the ball


def torchattacks_class(name: str) -> type:
    """The torchattacks attack class `name`, or a one-line error listing the choices."""
    import torchattacks

    found = getattr(torchattacks, name, None)
    if not (isinstance(found, type) and issubclass(found, torchattacks.attack.Attack)):
        names = sorted(
            n
            for n in dir(torchattacks)
            if isinstance(getattr(torchattacks, n), type)
            and issubclass(getattr(torchattacks, n), torchattacks.attack.Attack)
            and n not in ("Attack", "MultiAttack")
        )
        raise ConfigError(f"torchattacks has no attack {name!r}; available: {', '.join(names)}")
    return found


@ATTACKS.register("torchattacks")
class TorchattacksAttack(Attack):
    """`attack` (a torchattacks class name) with its constructor `options`, untargeted."""

    seed_stream = 23

    def __init__(self, attack: str, *, bn_mode: str = "eval", **options: Any) -> None:
        self.name = f"torchattacks-{attack}"
        super().__init__(bn_mode=bn_mode)
        self.cls = torchattacks_class(attack)
        accepted = [p for p in inspect.signature(self.cls.__init__).parameters if p != "self"]
        unknown = sorted(set(options) - set(accepted) - {"model"})
        if unknown or "model" in options:
            bad = ", ".join(unknown or ["model"])
            raise ConfigError(
                f"torchattacks.{attack} takes {', '.join(accepted[1:]) or 'no options'}; not {bad}"
            )
        self.options = options
        self.norm = "l2" if "L2" in attack else "linf"
        self.eps = options.get("eps", self._default("eps", accepted))

    def _default(self, name: str, accepted: list[str]) -> float | None:
        if name not in accepted:
            return None
        default = inspect.signature(self.cls.__init__).parameters[name].default
        return float(default) if isinstance(default, (int, float)) else None

    def _perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        if len(x) == 0:
            return x.clone()
        wrapped = AutocastLogits(model, lambda: self._autocast(x)).eval()
        with own_global_rng(x):
            torch.manual_seed(generator_seed(generator))
            attack = self.cls(wrapped, **self.options)
            return attack(x, y).detach().to(x.dtype)

    def _check_budget(self, x: torch.Tensor, x_adv: torch.Tensor) -> None:
        if x_adv.shape != x.shape or not torch.isfinite(x_adv).all():
            raise RuntimeError(f"{self.name} returned {tuple(x_adv.shape)} or non-finite values")
        if float(x_adv.min()) < -TOLERANCE or float(x_adv.max()) > 1 + TOLERANCE:
            raise RuntimeError(f"{self.name} left [0, 1]")
        if self.eps is None or not len(x):
            return
        delta = (x_adv - x).flatten(1)
        size = delta.abs().amax(1) if self.norm == "linf" else delta.norm(dim=1)
        if float(size.max()) > self.eps + TOLERANCE:
            raise RuntimeError(
                f"{self.name} left its {self.norm} ball: {float(size.max()):.6f} > eps {self.eps}"
            )
