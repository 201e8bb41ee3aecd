"""The corruptions figure: one example image per corruption beside the accuracy bars."""
from __future__ import annotations

import math

import numpy as np

from kerascnn.plots.common import MUTED, new_figure, show_digit

__all__ = ["corruption_figure"]


def corruption_figure(clean, examples, names, models, accuracy, clean_accuracy, severities, example_severity,
                      title, baseline=None):
    """Left: the clean image and each corruption of it at `example_severity` (a grid). Right: accuracy
    per corruption as horizontal bars. One model: a bar per severity (light to dark) and the
    baseline's mean over severities as a black tick; several: one bar per model (mean over the
    severities). `accuracy` (models, corruptions, severities); each model's clean accuracy a dotted line."""
    n = len(names)
    cols = 4
    rows = math.ceil((n + 1) / cols)
    bars_per_row = len(models) if len(models) > 1 else len(severities)
    fig = new_figure(12.5, max(5.0, min(9.0, 0.085 * n * bars_per_row + 2.0)))
    grid, bars = fig.subfigures(1, 2, width_ratios=[1.0, 1.35])
    axes = grid.subplots(rows, cols, squeeze=False).ravel()
    for ax, image, label in zip(axes, [clean] + list(examples), ["clean"] + [_pretty(x) for x in names]):
        # a thin frame: a white edge (stripe, brightness) would otherwise merge with the page
        show_digit(ax, image, label, fontsize=8, frame=MUTED, frame_width=0.8)
    for ax in axes[n + 1:]:
        ax.axis("off")
    grid.suptitle(f"the first test image at severity {example_severity}" if example_severity else
                  "the first test image, published severity", fontsize=9, color=MUTED)

    ax = bars.subplots()
    y = np.arange(n)[::-1].astype(float)
    if len(models) == 1:
        groups, colours = severities, [_shade(i, len(severities)) for i in range(len(severities))]
        values = accuracy[0].T                       # (severities, corruptions)
        labels = [f"severity {s}" for s in severities]
    else:
        groups, colours = models, [f"C{i}" for i in range(len(models))]
        values = accuracy.mean(axis=2)               # (models, corruptions)
        labels = [f"{m} (mean {v.mean():.1%})" for m, v in zip(models, values)]
    height = 0.8 / len(groups)
    for k, (row, colour, label) in enumerate(zip(values, colours, labels)):
        ax.barh(y + 0.4 - height * (k + 0.5), row, height, color=colour, label=label)
    for k, c in enumerate(clean_accuracy):
        ax.axvline(c, color=f"C{k}" if len(models) > 1 else "black", ls=":", lw=1)
    if baseline is not None and len(models) == 1:
        name, means = baseline
        ax.scatter(means, y, marker="|", s=160, color="black", zorder=3, label=f"{name}: mean over severities")
    ax.set_yticks(y, [_pretty(x) for x in names])
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("accuracy (dotted: clean)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=min(3, len(groups) + 1), frameon=False)
    ax.set_title(title, fontsize=10)
    return fig


def _pretty(name: str) -> str:
    return name.replace("_", " ")


def _shade(i: int, n: int) -> tuple:
    """Light to dark blue for severities 1..5."""
    import matplotlib

    return matplotlib.colormaps["Blues"](0.35 + 0.6 * (i / max(1, n - 1)))
