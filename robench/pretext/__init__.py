"""Self-supervised pretext tasks, one file each, registered in `PRETEXTS`."""

from robench.pretext import jigsaw as _jigsaw  # noqa: F401  (each import registers a task)
from robench.pretext import rotation as _rotation  # noqa: F401
from robench.pretext import selfie as _selfie  # noqa: F401
from robench.pretext.base import PretextBatch, PretextTask
from robench.pretext.registry import PRETEXTS, create_task

__all__ = ["PRETEXTS", "PretextBatch", "PretextTask", "create_task"]
