"""The explanation metrics' figure: one panel per metric, a box plot per method over the images."""
from __future__ import annotations

import math

import numpy as np

from kerascnn.plots.common import MUTED, new_figure

__all__ = ["metric_boxes"]


def metric_boxes(result):
    """kerascnn.experiments.explanation_metrics.Result -> Figure: per metric, the spread of its value
    over the images for every method (box: quartiles, whiskers 1.5 IQR, diamond: mean); the title
    says which way is better, and the best method (by mean) is drawn in colour."""
    from kerascnn.attributions.gradients import LABELS
    from kerascnn.plots.explanations import COLORS

    keys = [k for k, per in result.values.items() if per]
    cols = min(4, max(1, len(keys)))
    rows = max(1, math.ceil(len(keys) / cols))
    fig = new_figure(3.4 * cols, 2.9 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, key in zip(axes, keys):
        label, better, _ = result.describe(key)
        per = result.values[key]
        methods = [m for m in result.methods if m in per]
        data = [np.asarray(per[m], np.float64)[np.isfinite(per[m])] for m in methods]
        best = result.best(key)
        boxes = ax.boxplot(data, patch_artist=True, widths=0.6, showmeans=True,
                           meanprops={"marker": "D", "markersize": 4, "markerfacecolor": "black",
                                      "markeredgecolor": "black"}, medianprops={"color": "black"})
        for patch, m in zip(boxes["boxes"], methods):
            patch.set_facecolor(COLORS.get(m, MUTED) if m == best else "white")
            patch.set_edgecolor(COLORS.get(m, MUTED))
            patch.set_alpha(0.8)
        ax.set_xticks(range(1, len(methods) + 1), [LABELS[m] for m in methods], rotation=35, ha="right",
                      fontsize=8)
        n = max((len(d) for d in data), default=0)
        ax.set_title(f"{label}\n{better} is better{' (near 0)' if key == 'randomisation' else ''}; n={n}",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="y", labelsize=8)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(f"Explanation metrics on {result.count} {result.description} (filled: best by mean)", fontsize=11)
    return fig
