"""Each figure is a real PNG of a plausible size, written atomically (no temporary left over)."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image

from robench.report import plot_asr_heatmap, plot_overlap, plot_ta_ra

NAMES = ["scratch-P1F4", "rotation-P3F4", "jigsaw-P3F4"]


def _asr() -> pd.DataFrame:
    values = [[0.52, 0.31, 0.29], [0.35, 0.48, 0.30], [0.33, 0.28, 0.50]]
    frame = pd.DataFrame(values, index=NAMES, columns=NAMES)
    frame.index.name = "evaluated"
    return frame


def _overlap(names: list[str]) -> pd.DataFrame:
    rows = []
    for source in names:
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                rows.append(
                    {
                        "source": source,
                        "target_a": a,
                        "target_b": b,
                        "only_a": 0.10,
                        "only_b": 0.05,
                        "both": 0.25,
                        "neither": 0.60,
                        "n": 1000,
                    }
                )
    return pd.DataFrame(rows)


def _board() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": NAMES,
            "ta": [78.2, 83.5, 82.1],
            "ra": [47.4, 50.1, 49.6],
            "epochs_to_best": [99, 46, 70],
            "attack": "pgd-linf",
            "eps": "8/255",
            "steps": 20,
            "n_eval": 1000,
            "dataset": "CIFAR-10",
        }
    )


def _check_png(path, min_width=400, min_height=300):
    assert path.is_file() and path.stat().st_size > 2000
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width >= min_width and height >= min_height
    assert width < 6000 and height < 6000
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over


def test_asr_heatmap(tmp_path):
    path = plot_asr_heatmap(_asr(), tmp_path / "asr.png")
    assert path == tmp_path / "asr.png"
    _check_png(path)


@pytest.mark.parametrize("names", [NAMES, NAMES[:2]], ids=["three", "two"])
def test_overlap_venn(tmp_path, names):
    path = plot_overlap(_overlap(names), tmp_path / "overlap.png")
    _check_png(path, min_width=600 if len(names) == 3 else 400)


def test_overlap_of_nothing_is_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plot_overlap(_overlap(NAMES[:1]), tmp_path / "overlap.png")


def test_ta_ra(tmp_path):
    path = plot_ta_ra(_board(), tmp_path / "ta_ra.png")
    _check_png(path)


def _two_sizes() -> pd.DataFrame:
    """Run a at n = 20 and n = 1000, run b at n = 1000 only (a quick board before #20)."""
    rows = [("a", 20, 35.0, "2026-01-01"), ("a", 1000, 32.5, "2026-01-02"), ("b", 1000, 20.0, "x")]
    frame = pd.DataFrame(rows, columns=["run", "n_eval", "ra", "date"])
    frame["ta"], frame["epochs_to_best"], frame["model_id"] = 50.0, 3, frame["run"]
    return frame


def test_one_point_per_run_takes_the_largest_n_or_the_one_asked_for():
    from robench.report.figure1 import one_point_per_run

    largest = one_point_per_run(_two_sizes()).set_index("run")
    assert len(largest) == 2 and largest.loc["a", "n_eval"] == 1000
    assert largest.loc["a", "ra"] == 32.5
    only_20 = one_point_per_run(_two_sizes(), n=20)
    assert list(only_20["run"]) == ["a"] and only_20["ra"].iloc[0] == 35.0
    with pytest.raises(ValueError, match="n=50"):
        one_point_per_run(_two_sizes(), n=50)


def test_figure_1_draws_interval_error_bars(tmp_path):
    from robench.stats.intervals import interval_from_percent

    board = _two_sizes()
    for metric in ("ta", "ra"):
        pairs = zip(board[metric], board["n_eval"], strict=True)
        ends = [interval_from_percent(v, n) for v, n in pairs]
        board[f"{metric}_lo"], board[f"{metric}_hi"] = zip(*ends, strict=True)
    path = plot_ta_ra(board, tmp_path / "bars.png")
    plain = plot_ta_ra(board.drop(columns=["ta_lo", "ta_hi", "ra_lo", "ra_hi"]), tmp_path / "x.png")
    with Image.open(path) as with_bars, Image.open(plain) as without:
        assert with_bars.size == without.size
        # the bars are drawn: the two images differ beyond the title
        diff = sum(a != b for a, b in zip(with_bars.tobytes(), without.tobytes(), strict=True))
        assert diff > 1000
