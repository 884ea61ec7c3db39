"""What a launched reproduction knows about its jobs, kept in `DIR/launch/` beside the runs.

    DIR/launch/jobs.json          job id -> launcher, its cluster job id, log path, submit time
    DIR/launch/done/<job>.json    written by the job itself when it finished
    DIR/launch/failed/<job>.json  written by the job when it raised: the error's first line
    DIR/launch/logs/<job>.log     the local launcher's log of a job (SLURM: submitit's folder)

Every machine that runs a job sees DIR (the README says so), so these files are how a rerun
knows what not to submit again and how `robench status` knows what failed and where its log is.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from robench.atomic import write_json_atomic
from robench.provenance import now_iso

LAUNCH = "launch"


@dataclass(frozen=True)
class LaunchState:
    """The launch folder of one reproduction output folder."""

    out: Path

    @property
    def folder(self) -> Path:
        return self.out / LAUNCH

    @property
    def manifest(self) -> Path:
        return self.folder / "jobs.json"

    def log(self, job: str) -> Path:
        return self.folder / "logs" / f"{job}.log"

    def done(self, job: str) -> bool:
        return (self.folder / "done" / f"{job}.json").is_file()

    def mark_done(self, job: str, seconds: float) -> None:
        record = {"job": job, "finished": now_iso(), "host": socket.gethostname()}
        record["seconds"] = seconds
        write_json_atomic(self.folder / "done" / f"{job}.json", record)
        (self.folder / "failed" / f"{job}.json").unlink(missing_ok=True)

    def mark_failed(self, job: str, error: str) -> None:
        record = {"job": job, "failed": now_iso(), "host": socket.gethostname(), "error": error}
        write_json_atomic(self.folder / "failed" / f"{job}.json", record)

    def failure(self, job: str) -> dict[str, Any] | None:
        return _read(self.folder / "failed" / f"{job}.json")

    def submitted(self) -> dict[str, dict[str, Any]]:
        """Every job's last submission (job id -> launcher, cluster id, log, time)."""
        return _read(self.manifest) or {}

    def record_submission(self, job: str, launcher: str, cluster_id: str, log: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.manifest) + ".lock", timeout=60):
            entries = self.submitted()
            entries[job] = {
                "launcher": launcher,
                "cluster_id": cluster_id,
                "log": str(log),
                "submitted": now_iso(),
            }
            write_json_atomic(self.manifest, entries)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
