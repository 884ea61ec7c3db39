"""Self-supervised pretext tasks, one file each, registered in `PRETEXTS`.

The foundation ships none: suites may only use pretrain = "none" until a task registers.
"""

from robench.registry import Registry

PRETEXTS: Registry[object] = Registry("pretext task")

__all__ = ["PRETEXTS"]
