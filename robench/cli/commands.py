"""The main commands: train, eval, quickstart, transfer-matrix (reproduce: launch.py).

Each builds a typed request or loads a suite, starts a Session, and calls robench.workflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from robench.cli.common import (
    CheckpointEvery,
    DataDir,
    Device,
    Log,
    Precision,
    app,
    console,
    session_for,
)
from robench.config.protocol import CrossCheckConfig
from robench.errors import RobenchError


@app.command()
def train(
    suite: Annotated[str, typer.Argument(help="Suite TOML file, or a shipped suite's name.")],
    out: Annotated[Path, typer.Option(help="Directory that gets one folder per run.")],
    only: Annotated[list[str] | None, typer.Option(help="Train only these runs.")] = None,
    data_dir: DataDir = None,
    device: Device = "auto",
    checkpoint_every: CheckpointEvery = 100,
    log: Log = None,
) -> None:
    """Train a suite's runs (resuming unfinished ones, skipping finished ones)."""
    from robench.config import load_suite
    from robench.workflow import train as run_train

    loaded = load_suite(suite)
    session = session_for(device, data_dir, checkpoint_every, loaded, log)
    trained = run_train(session, loaded, out, only)
    console.print(f"trained {len(trained.runs)} run(s) under {out}", markup=False)


@app.command("eval")
def eval_(
    run_dirs: Annotated[
        list[Path] | None, typer.Argument(help="Run directories to evaluate.")
    ] = None,
    suite: Annotated[
        str, typer.Option(help="pgd20, autoattack, unforeseen, corruptions or all.")
    ] = "pgd20",
    leaderboard_dir: Annotated[Path, typer.Option(help="Where <suite>.csv goes.")] = Path(
        "leaderboards"
    ),
    n: Annotated[
        int | None, typer.Option(help="First n test images (default: run's eval_n or all).")
    ] = None,
    checkpoint: Annotated[
        str, typer.Option(help="best_ta (the paper's), best_ra or last.")
    ] = "best_ta",
    seed: Annotated[int, typer.Option(help="Seed of the attacks' random starts.")] = 0,
    ensemble: Annotated[
        bool, typer.Option(help="Evaluate the runs as one softmax-averaging ensemble.")
    ] = False,
    name: Annotated[
        str | None, typer.Option(help="Row name for an ensemble or an external model.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Your own model: FILE.py:FACTORY (with --weights).")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="State dict for --model (.pt/.pth or .safetensors).")
    ] = None,
    robustbench: Annotated[
        str | None, typer.Option(help="A RobustBench zoo model, e.g. Carmon2019Unlabeled.")
    ] = None,
    threat_model: Annotated[
        str, typer.Option(help="--robustbench: the zoo's threat model, Linf or L2.")
    ] = "Linf",
    robustbench_dir: Annotated[
        Path | None,
        typer.Option(help="--robustbench: its checkpoints' folder (default: robench's cache)."),
    ] = None,
    data: Annotated[str, typer.Option(help="Data source for --model/--robustbench.")] = "cifar10",
    eps: Annotated[str | None, typer.Option(help="Override the attack eps, e.g. 4/255.")] = None,
    eps_sweep: Annotated[
        str | None,
        typer.Option(help="One evaluation per eps, same images, and the curve: 0,2/255,8/255."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Override the attack steps.")] = None,
    step_size: Annotated[
        str | None, typer.Option(help="Override the PGD step size, e.g. 1/255.")
    ] = None,
    norm: Annotated[
        str | None, typer.Option(help="Threat model: linf or l2 (its default eps unless --eps).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Evaluation batch size.")] = None,
    corruptions_dir: Annotated[
        Path | None, typer.Option(help="Official CIFAR-10-C folder (default: generate).")
    ] = None,
    allow_randomized: Annotated[
        bool, typer.Option(help="Evaluate a randomised model anyway (flagged).")
    ] = False,
    allow_training_mode: Annotated[
        bool, typer.Option(help="Evaluate a model stuck in training mode anyway (flagged).")
    ] = False,
    allow_other_classes: Annotated[
        bool, typer.Option(help="Evaluate on a test set with other classes than trained on.")
    ] = False,
    cross_check_images: Annotated[
        int, typer.Option(help="Images of the gradient-free masking cross-check (0: off).")
    ] = CrossCheckConfig.images,
    cross_check_queries: Annotated[
        int, typer.Option(help="Square queries per image of the masking cross-check.")
    ] = CrossCheckConfig.queries,
    precision: Precision = "fp32",
    attack: Annotated[
        str | None, typer.Option(help="--suite torchattacks: the torchattacks class, e.g. CW.")
    ] = None,
    attack_option: Annotated[
        list[str] | None,
        typer.Option(help="--suite torchattacks: KEY=VALUE for the attack (repeat it)."),
    ] = None,
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Evaluate runs, an ensemble of runs, your own model or a RobustBench zoo model; upsert
    rows into the boards."""
    from robench.eval.request import EvalRequest
    from robench.workflow import evaluate_request

    request = EvalRequest(
        run_dirs=tuple(run_dirs or ()),
        suite=suite,
        leaderboard_dir=leaderboard_dir,
        n=n,
        checkpoint=checkpoint,  # type: ignore[arg-type]  (checked by the request)
        seed=seed,
        ensemble=ensemble,
        name=name,
        model=model,
        weights=weights,
        robustbench=robustbench,
        threat_model=threat_model,
        robustbench_dir=robustbench_dir,
        data=data,
        eps=eps,
        eps_sweep=tuple(v.strip() for v in eps_sweep.split(",")) if eps_sweep else (),
        steps=steps,
        step_size=step_size,
        norm=norm,
        batch_size=batch_size,
        corruptions_dir=corruptions_dir,
        allow_randomized=allow_randomized,
        allow_training_mode=allow_training_mode,
        allow_other_classes=allow_other_classes,
        cross_check_images=cross_check_images,
        cross_check_queries=cross_check_queries,
        precision=precision,
        attack=attack,
        attack_options=tuple(attack_option or ()),
        data_dir=data_dir,
    )
    evaluate_request(session_for(device, data_dir), request)


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("robench-quickstart"),
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Reproduce suites/quick.toml (P1F3 vs P1F4 on CPU in minutes) and say where it went."""
    import time

    from robench.config import load_suite
    from robench.workflow import reproduce as run_reproduce

    start = time.perf_counter()
    quick = load_suite("quick")
    done = run_reproduce(session_for(device, data_dir, suite=quick), quick, out, None)
    minutes = (time.perf_counter() - start) / 60
    boards = done.boards.folder
    where = escape(
        f"  runs:         {out / 'runs'}\n"
        f"  leaderboards: {boards / 'pgd20.csv'}, {boards / 'table3.csv'}\n"
        f"  report:       {done.report}\n"
        f"  show one:     robench leaderboard show {boards / 'table3.csv'}"
    )
    console.print(
        f"\n[bold green]quickstart done[/bold green] in {minutes:.1f} min.\n{where}",
        soft_wrap=True,
    )


@app.command("transfer-matrix")
def transfer_matrix_(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (2 or more).")],
    out: Annotated[Path, typer.Option(help="Gets the CSVs and PNGs.")],
    attack: Annotated[str, typer.Option(help="Evaluation suite whose attack is used.")] = "pgd20",
    n: Annotated[
        int | None, typer.Option(help="First n test images (default: runs' eval_n).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the attack's random start.")] = 0,
    precision: Precision = "fp32",
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Attack success rates of each run's examples on every run, and their overlaps."""
    from robench.distributed import current
    from robench.eval.suites import EvalOptions, get_eval_suite
    from robench.workflow import transfer_analysis

    if get_eval_suite(attack).transferable(EvalOptions()) is None:
        raise RobenchError(f"--attack {attack}: transfer analysis needs a PGD suite (pgd20)")
    if n is not None and n < 1:
        raise RobenchError(f"--n must be >= 1, got {n}")
    if seed < 0:
        raise RobenchError(f"--seed must be >= 0, got {seed}")
    from robench.runtime import check_precision

    check_precision(precision)
    session = session_for(device, data_dir)
    figures = current().on_main(  # not sharded: under torchrun, rank 0 does it all
        lambda: transfer_analysis(
            session,
            list(run_dirs),
            out,
            out,
            n=n,
            seed=seed,
            suite_name=attack,
            precision=precision,
        )
    )
    listing = "\n".join(f"  {p}" for p in figures or [])
    console.print(f"figures:\n{listing}", soft_wrap=True, markup=False)
