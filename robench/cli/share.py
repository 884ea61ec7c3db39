"""The sharing commands: export (a run as a Hub-style folder) and push (that folder to the Hub)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from robench.cli.common import app, console
from robench.errors import RobenchError

Checkpoint = Annotated[str, typer.Option(help="best_ta (the paper's), best_ra or last.")]
TrunkOnly = Annotated[bool, typer.Option(help="Only the trunk (stem + stages 1-3).")]
Boards = Annotated[
    Path | None,
    typer.Option(help="Boards with the run's rows (default: leaderboards/ beside runs/)."),
]


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A trained run directory.")],
    out: Annotated[Path, typer.Option(help="The folder to write (model.safetensors, ...).")],
    checkpoint: Checkpoint = "best_ta",
    trunk_only: TrunkOnly = False,
    leaderboard_dir: Boards = None,
) -> None:
    """Write a run as a Hugging Face Hub-style folder: weights, config, model card."""
    from robench.artifacts import export_run

    folder = export_run(
        run_dir, out, checkpoint=checkpoint, trunk_only=trunk_only, leaderboard_dir=leaderboard_dir
    )
    console.print(f"wrote {folder} (load it with robench.load)", soft_wrap=True, markup=False)


@app.command()
def push(
    run_dir: Annotated[Path, typer.Argument(help="A trained run directory.")],
    repo: Annotated[str, typer.Argument(help="The Hub repository, ORG/NAME.")],
    checkpoint: Checkpoint = "best_ta",
    trunk_only: TrunkOnly = False,
    leaderboard_dir: Boards = None,
) -> None:
    """Export a run and upload the folder to the Hugging Face Hub (needs a token)."""
    from robench.artifacts import export_run
    from robench.artifacts.hub import REPO_ID

    if not REPO_ID.match(repo):
        raise RobenchError(f"{repo!r}: a Hub repository looks like ORG/NAME")
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory(prefix="robench-push-") as scratch:
        folder = export_run(
            run_dir,
            Path(scratch) / "model",
            checkpoint=checkpoint,
            trunk_only=trunk_only,
            leaderboard_dir=leaderboard_dir,
        )
        api = HfApi()
        try:
            api.create_repo(repo, exist_ok=True)
            api.upload_folder(repo_id=repo, folder_path=str(folder))
        except Exception as exc:
            raise RobenchError(
                f"push to {repo} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "log in with `hf auth login` where the network allows, or export and upload "
                "the folder yourself"
            ) from None
    console.print(f"pushed {run_dir} to hf-hub:{repo}", soft_wrap=True, markup=False)
