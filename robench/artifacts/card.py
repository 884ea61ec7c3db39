"""The model card of an exported model: the Hub's YAML front matter, then the board rows.

The front matter is written by huggingface_hub (`ModelCardData` with one `EvalResult` per
board number), so the Hub reads the metrics into its model-index; each metric's name carries
its protocol and 95% interval, and the body repeats the rows the numbers come from.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# board -> (metric column, metric type, what it is)
CARD_METRICS = {
    "pgd20": (("ta", "accuracy", "clean accuracy"), ("ra", "robust-accuracy", "PGD-20 RA")),
    "autoattack": (("aa_ra", "robust-accuracy", "AutoAttack RA"),),
    "unforeseen": (("mean", "accuracy", "mean accuracy under 12 unforeseen attacks"),),
    "corruptions": (("mean", "accuracy", "mean CIFAR-10-C accuracy"),),
}
SCENARIOS = {
    "P1": "no pretraining",
    "P2": "standard self-supervised pretraining",
    "P3": "adversarial self-supervised pretraining",
    "PS": "self-supervised pretraining on Gaussian-noised images",
    "PT": "the trunk of another robench model",
    "F1": "partial standard fine-tuning",
    "F2": "partial adversarial fine-tuning",
    "F3": "full standard fine-tuning",
    "F4": "full adversarial fine-tuning",
}


def model_card(config: dict[str, Any], rows: dict[str, pd.DataFrame]) -> str:
    """README.md of an exported model (see the module)."""
    from huggingface_hub import EvalResult, ModelCardData

    results = [
        EvalResult(
            task_type="image-classification",
            dataset_type="cifar10",
            dataset_name=str(row["dataset"]),
            metric_type=kind,
            metric_value=round(float(row[column]), 2),
            metric_name=_metric_name(label, row, column),
        )
        for board, metrics in CARD_METRICS.items()
        for _, row in rows.get(board, pd.DataFrame()).iterrows()
        for column, kind, label in metrics
        if column in row and pd.notna(row[column])
    ]
    data = ModelCardData(
        library_name="robench",
        tags=["robench", "adversarial-robustness", "image-classification",
              str(config["pretext"]), str(config["scenario"])],
        datasets=["cifar10"],
        model_name=str(config["name"]),
        eval_results=results or None,
    )  # fmt: skip
    return f"---\n{data.to_yaml()}\n---\n\n{_body(config, rows)}"


def _metric_name(label: str, row: pd.Series, column: str) -> str:
    interval = ""
    if pd.notna(row.get(f"{column}_lo")) and pd.notna(row.get(f"{column}_hi")):
        interval = f", 95% CI {row[f'{column}_lo']:.1f}-{row[f'{column}_hi']:.1f}"
    attack = ""
    if column != "ta" and pd.notna(row.get("eps_value")):  # one L-p budget (PGD, AutoAttack)
        attack = f"{row['attack']} eps {row['eps']}, "
    elif column != "ta" and pd.notna(row.get("steps")):  # the unforeseen attacks
        attack = f"{int(row['steps'])} steps, "
    return f"{label} ({attack}n={int(row['n_eval'])}{interval}, {row['precision']})"


def _body(config: dict[str, Any], rows: dict[str, pd.DataFrame]) -> str:
    from robench.report.tables import board_markdown

    scenario = str(config["scenario"])
    what = ", ".join(SCENARIOS.get(p, p) for p in (scenario[:2], scenario[2:]) if p)
    kind = "trunk (stem and stages 1-3) " if config["trunk_only"] else ""
    lines = [
        f"# {config['name']}",
        "",
        f"A {config['architecture']} {kind}trained by robench {config['robench_version']} "
        f"(Chen et al., CVPR 2020, scenario {scenario}: {what}; pretext {config['pretext']}), "
        f"checkpoint {config['checkpoint']} (epoch {config['epoch']}). Inputs are images in "
        "[0, 1]; normalisation is inside the model.",
        "",
        "```python",
        "import robench",
        'model = robench.load("path/to/this/folder")  # or "hf-hub:ORG/NAME" once pushed',
        "```",
        "",
    ]
    if not rows:
        lines.append("No board holds this model's rows yet: evaluate it with `robench eval`.")
    for board, frame in rows.items():
        lines += [f"## {board}", "", board_markdown(frame.reset_index(drop=True), board)]
    lines += [
        "",
        f"Trained on {config['data'].get('dataset', '?')}. Intervals are 95% Wilson intervals "
        "over the test images; they do not cover the seed-to-seed variance of training.",
    ]
    return "\n".join(lines) + "\n"
