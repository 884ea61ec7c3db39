"""One generic name -> factory registry for every extensible kind (models, attacks, ...).

A new model or attack is one file with one decorator line; an unknown name fails with the
list of valid names instead of a KeyError deep in a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from robench.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorate

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            valid = ", ".join(sorted(self._factories)) or "(none)"
            raise ConfigError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def create(self, name: str, **kwargs: object) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
