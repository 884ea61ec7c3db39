"""The corruption registry: each corruption file registers its function with one decorator.

A registered function is `corrupt(x, severity, generator) -> Tensor` (see `base.CorruptionFn`);
`CORRUPTIONS.get(name)` fails with the list of valid names.
"""

from collections.abc import Callable

from torch import Tensor

from robench.registry import Registry

CORRUPTIONS: Registry[Callable[..., Tensor]] = Registry("corruption")
