"""The attack registry. Attacks register themselves with `@ATTACKS.register(name)`."""

from robench.attacks.base import Attack
from robench.registry import Registry

ATTACKS: Registry[Attack] = Registry("attack")
