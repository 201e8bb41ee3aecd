"""TCAV's figures: the scores of every concept for every target class (a not-significant cell is drawn
as "n.s.", never as a score, as tcav's utils_plot draws no bar there), and a few images of each concept."""
from __future__ import annotations

import numpy as np

from kerascnn.plots.common import MUTED, new_figure, show_digit

__all__ = ["concept_scores", "concept_examples"]


def concept_scores(result):
    """kerascnn.experiments.concepts.Result -> Figure. Several targets: a concepts x classes grid,
    significant cells coloured by the mean score (red: the concept raises the logit, above the random
    CAVs'; blue: lowers it) and written out, n.s. cells grey; the random CAVs' mean in the last row.
    One target: bars of the mean score with the runs' std, the random CAVs' bar beside them."""
    if len(result.targets) == 1:
        return _bars(result)
    names, labels = result.concepts, [str(n) for n in result.class_names]
    fig = new_figure(max(5.0, 1.2 + 0.62 * len(labels)), 1.3 + 0.5 * (len(names) + 1))
    ax = fig.add_subplot()
    grid = np.where(result.significant, result.scores.mean(-1), np.nan)
    grid = np.vstack([grid, np.full(len(labels), np.nan)])
    ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu_r", vmin=0, vmax=1, aspect="auto")
    ax.imshow(np.where(np.isnan(grid), 0.6, np.nan), cmap="Greys", vmin=0, vmax=4, aspect="auto")
    for c in range(len(names)):
        for t in range(len(labels)):
            if result.significant[c, t]:
                v = result.scores[c, t].mean()
                ax.text(t, c, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(v - 0.5) > 0.3 else "black")
            else:
                ax.text(t, c, "n.s.", ha="center", va="center", fontsize=7, color=MUTED)
    for t, r in enumerate(result.random_scores):
        ax.text(t, len(names), f"{r.mean():.2f}", ha="center", va="center", fontsize=7, color=MUTED, style="italic")
    ax.axhline(len(names) - 0.5, color="white", linewidth=3)
    ax.set_xticks(range(len(labels)), labels, fontsize=8, rotation=0 if max(map(len, labels)) <= 3 else 35)
    ax.set_yticks(range(len(names) + 1), names + ["random CAVs"], fontsize=8)
    ax.set_xlabel("target class (its logit)", fontsize=9)
    ax.tick_params(length=0)
    ax.set_title(f"TCAV at {result.layer}: share of each class's test images whose logit rises along the concept\n"
                 f"mean of {result.settings['random_runs']} CAVs; n.s.: not significant (t-test against random "
                 f"CAVs, p < {result.threshold:.2g}, Bonferroni)", fontsize=9)
    return fig


def _bars(result):
    names = result.concepts
    fig = new_figure(max(4.0, 1.5 + 0.9 * (len(names) + 1)), 3.4)
    ax = fig.add_subplot()
    x = np.arange(len(names) + 1)
    for c, name in enumerate(names):
        runs = result.scores[c, 0]
        if result.significant[c, 0]:
            up = runs.mean() > result.random_scores[0].mean()
            color = "#cf222e" if up else "#0969da"
            ax.bar(c, runs.mean(), 0.6, yerr=runs.std(), capsize=4, color=color)
            ax.text(c, min(1.02, runs.mean() + runs.std() + 0.02), f"{runs.mean():.2f}", ha="center", fontsize=8,
                    color=color, weight="bold")
        else:
            ax.text(c, 0.03, "n.s.", ha="center", fontsize=10, color=MUTED, weight="bold")
    r = result.random_scores[0]
    ax.bar(len(names), r.mean(), 0.6, yerr=r.std(), capsize=4, color="white", edgecolor=MUTED, hatch="//")
    ax.axhline(0.5, color=MUTED, linewidth=0.8, linestyle=":")
    ax.set_xticks(x, names + ["random CAVs"], fontsize=8, rotation=20, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("TCAV score", fontsize=9)
    ax.set_title(f"TCAV of class {result.class_names[0]} at {result.layer} (mean\u00b1std of "
                 f"{result.settings['random_runs']} CAVs)\nn.s.: not significant against the random CAVs, "
                 f"p < {result.threshold:.2g} (Bonferroni)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return fig


def concept_examples(result, per_concept: int = 8):
    """The first images of each concept, a row each, titled with its name and its number of images."""
    names = result.concepts
    shown = max(1, min(per_concept, max(len(result.examples[n]) for n in names)))
    fig = new_figure(1.0 * shown + 0.4, 1.15 * len(names) + 0.3)
    axes = np.atleast_2d(fig.subplots(len(names), shown, squeeze=False))
    for row, name in zip(axes, names):
        images = result.examples[name]
        for i, ax in enumerate(row):
            if i < len(images):
                show_digit(ax, images[i])
            else:
                ax.axis("off")
        row[0].set_title(f"{name} ({result.sizes[name]} images)", fontsize=9, loc="left", pad=3)
    fig.suptitle("Concept examples", fontsize=10)
    return fig
