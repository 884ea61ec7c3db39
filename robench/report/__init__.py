"""Figures for reports: the paper's Figure 1 (TA vs RA), Table 4 (transfer) and Figure 5."""

from robench.report.figure1 import one_point_per_run, plot_ta_ra
from robench.report.figures import plot_asr_heatmap, plot_overlap

__all__ = ["one_point_per_run", "plot_asr_heatmap", "plot_overlap", "plot_ta_ra"]
