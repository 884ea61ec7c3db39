"""Where and how a reproduction's jobs run: the `[launcher]` table, typed.

The same settings come from a suite's `[launcher]` table, a separate TOML file
(`--launcher-config FILE`, whose `[launcher]` table or top level holds them) and the command
line, each overriding the one before. A separate file keeps the suite file, whose hash is
part of every row's identity, unchanged when only the cluster changes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from robench.config.typed import build
from robench.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class LauncherConfig:
    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int | None = None  # SLURM: 1; local: the cores split between the jobs
    mem: str | None = None  # SLURM's --mem, e.g. "32G"
    time_minutes: int = 24 * 60
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()  # lines run before each job, e.g. "module load cuda"
    max_jobs: int = 0  # jobs running at once (SLURM: chained with afterany); 0: no limit
    max_requeues: int = 3  # preemptions / time-outs after which a job is left failed

    def __post_init__(self) -> None:
        for name in ("gpus_per_job", "max_jobs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"launcher.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("cpus_per_job", "time_minutes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"launcher.{name} must be >= 1, got {getattr(self, name)}")

    def override(self, **given: Any) -> LauncherConfig:
        """These settings with the command line's (None: not given) on top."""
        return replace(self, **{k: v for k, v in given.items() if v not in (None, ())})


FIELDS = tuple(f.name for f in fields(LauncherConfig))


def launcher_table(path: Path, *, nested_only: bool) -> dict[str, Any]:
    """The `[launcher]` table of a TOML file (a suite: only there; a launcher file: there or
    at its top level)."""
    try:
        doc = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file ({exc})") from None
    table = doc.get("launcher", {}) if "launcher" in doc or nested_only else doc
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: launcher must be a table")
    return table


def load_launcher(suite_path: Path | None, config_path: Path | None) -> LauncherConfig:
    """The suite's `[launcher]` table, then the launcher file's on top."""
    table: dict[str, Any] = {}
    if suite_path is not None and Path(suite_path).is_file():
        table.update(launcher_table(suite_path, nested_only=True))
    if config_path is not None:
        if not Path(config_path).is_file():
            raise ConfigError(f"--launcher-config {config_path} does not exist")
        table.update(launcher_table(config_path, nested_only=False))
    return build(LauncherConfig, table, f"{config_path or suite_path}: launcher")
