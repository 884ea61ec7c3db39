"""Figures for reports: the paper's Figure 1 (TA vs RA), Table 4 (transfer) and Figure 5."""

from robench.report.figures import plot_asr_heatmap, plot_overlap, plot_ta_ra

__all__ = ["plot_asr_heatmap", "plot_overlap", "plot_ta_ra"]
