"""Figures of the batch-norm study (a kerascnn.compare.CompareResult): curves as a mean line with
a min-max band over seeds, and the test accuracy of every seed."""
from __future__ import annotations

import numpy as np

from kerascnn.plots.common import mark_below, new_figure, plural

__all__ = ["VARIANT_COLORS", "band_curves", "seed_accuracies"]

#: Without batch norm blue, with batch norm orange, in every figure of the study.
VARIANT_COLORS = {False: "#1a56c4", True: "#e8710a"}
REFERENCE_ACCURACY = {False: 0.9892, True: 0.9905}  # EE6132's report, 5 epochs, one run each
MUTED = "#57606a"


def _label(variant) -> str:
    word = "with" if variant.batchnorm else "without"
    return f"{word} batch norm ({variant.count} seed{'s' if variant.count != 1 else ''})"


def _epoch_ends(result) -> list[float]:
    run = result.runs[0]
    per_epoch = run.metrics.get("steps_per_epoch")
    epochs = run.metrics.get("epochs") or len(run.history)
    if not per_epoch:
        return []
    return [per_epoch * e for e in range(1, int(epochs))]


def band_curves(result, key: str = "accuracy"):
    """Training (block means of the batches) and validation `key` ("loss" or "accuracy") against
    iterations, both variants: mean over seeds as a line, min to max as a shaded band. Loss on a
    log scale; accuracy zoomed on the top (the range of the points after the first epoch), with the
    threshold of the study dashed and the mean points below the axis marked on its bottom edge."""
    if key not in ("loss", "accuracy"):
        raise ValueError(f"key must be loss or accuracy, got {key!r}")
    fig = new_figure(11.5, 4.4)
    axes = fig.subplots(1, 2, sharey=True)
    block = None
    for variant in (result.plain, result.batchnorm):
        color = VARIANT_COLORS[variant.batchnorm]
        train, val = variant.curves[key], variant.curves[f"val_{key}"]
        axes[0].fill_between(train.iteration, train.low, train.high, color=color, alpha=0.22, lw=0)
        axes[0].plot(train.iteration, train.mean, color=color, lw=1.5, label=_label(variant))
        axes[1].fill_between(val.iteration, val.low, val.high, color=color, alpha=0.22, lw=0)
        axes[1].plot(val.iteration, val.mean, "o-", color=color, ms=3, lw=1.3, label=_label(variant))
        if len(train.iteration) > 1:
            block = float(np.median(np.diff(train.iteration)))
    every = f"every {block:,.0f} iterations" if block else "per block"
    axes[0].set_title(f"training: mean loss of each block of batches ({every})" if key == "loss"
                      else f"training: accuracy of each block of batches ({every})", fontsize=10)
    recipe = _train_recipe(result)
    val_every = recipe.get("val_every")
    when = f"every {val_every} iterations and at epoch ends" if val_every else "at epoch ends"
    axes[1].set_title(f"validation ({when})", fontsize=10)
    for ax in axes:
        for boundary in _epoch_ends(result):
            ax.axvline(boundary, color="0.75", lw=0.8, ls=":")
        ax.set_xlabel("iteration (batch)")
        ax.grid(alpha=0.3, which="both" if key == "loss" else "major")
    if key == "loss":
        axes[0].set_yscale("log")
        axes[0].set_ylabel("cross-entropy (log scale)")
    else:
        axes[0].set_ylabel("accuracy")
        threshold = result.threshold
        axes[1].axhline(threshold, color=MUTED, lw=0.9, ls="--")
        axes[1].annotate(f"{threshold:.0%}", (0.0, threshold), xycoords=("axes fraction", "data"),
                         xytext=(3, 3), textcoords="offset points", ha="left", fontsize=8, color=MUTED)
        bottom = _accuracy_floor(result, threshold)
        axes[0].set_ylim(bottom, 1.0015)
        below = 0
        for variant in (result.plain, result.batchnorm):
            color = VARIANT_COLORS[variant.batchnorm]
            for ax, band in ((axes[0], variant.curves[key]), (axes[1], variant.curves[f"val_{key}"])):
                below += mark_below(ax, band.iteration, band.mean, color)
        if below:
            fig.supxlabel(f"\u25bc on the bottom edge: {plural(below, 'mean point')} below the axis, which is "
                          f"drawn from the points after the first epoch", fontsize=9, color=MUTED)
        axes[0].yaxis.set_major_formatter(_percent_formatter())
    axes[1].legend(loc="lower right" if key == "accuracy" else "upper right", fontsize=8)
    epochs = recipe.get("epochs", "?")
    ends = "; dotted: epoch ends" if _epoch_ends(result) else ""
    fig.suptitle(f"{'Loss' if key == 'loss' else 'Accuracy'} with and without batch norm: mean over seeds, "
                 f"band from min to max ({epochs} epoch{'' if epochs == 1 else 's'}, batch "
                 f"{recipe.get('batch_size', '?')}, lr schedule {recipe.get('lr_schedule', '?')}{ends})", fontsize=11)
    return fig


def _train_recipe(result) -> dict:
    """The training recipe of a study: result.json keeps it under "train", beside the study's own
    fields (seeds, threshold, ...)."""
    return result.recipe.get("train", {})


def _accuracy_floor(result, threshold: float) -> float:
    """The bottom of the accuracy axis: under the lowest validation value (band included) after the
    first epoch, and under the threshold. The first validation point of batch norm (~76%) would
    otherwise stretch the axis to 70% and squash the 98-99.4% range where the variants differ."""
    ends = _epoch_ends(result)
    lows = []
    for variant in (result.plain, result.batchnorm):
        band = variant.curves["val_accuracy"]
        if not len(band.low):
            continue
        later = np.asarray(band.iteration) >= ends[0] if ends else np.arange(len(band.low)) >= len(band.low) // 4
        lows.append(float(np.nanmin(np.asarray(band.low)[later if later.any() else slice(None)])))
    low = min(lows + [threshold])
    return max(0.0, low - max(0.002, 0.15 * (1.0 - low)))


def _percent_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{100 * value:.1f}%")


def seed_accuracies(result):
    """Test accuracy of every seed (dots, numbered by seed) and each variant's mean ± one standard
    deviation, with the reference report's single runs as grey ticks; the verdict on accuracy below."""
    variants = (result.plain, result.batchnorm)
    fig = new_figure(8.5, 2.9)
    ax = fig.subplots()
    for row, variant in enumerate(variants):
        color = VARIANT_COLORS[variant.batchnorm]
        values = np.asarray(variant.test_accuracies) * 100
        ax.scatter(values, np.full(len(values), row), color=color, s=36, zorder=3, alpha=0.85)
        for seed, value in zip(variant.seeds, values):
            ax.annotate(str(seed), (value, row), xytext=(0, 6), textcoords="offset points", ha="center",
                        fontsize=7, color=MUTED)
        mean, std = variant.accuracy_mean * 100, variant.accuracy_std * 100
        ax.errorbar([mean], [row - 0.22], xerr=[std] if variant.count > 1 else None, fmt="D", color=color,
                    ms=5, capsize=4, lw=1.4)
        text = f"mean {mean:.2f}%" + (f" ± {std:.2f}" if variant.count > 1 else "")
        ax.annotate(text, (mean, row - 0.22), xytext=(0, -12), textcoords="offset points", ha="center",
                    fontsize=8, color=color)
        ref = REFERENCE_ACCURACY[variant.batchnorm] * 100
        ax.plot([ref], [row], marker="|", color=MUTED, ms=14, mew=1.5, zorder=2)
        ax.annotate(f"ref {ref:.2f}%", (ref, row), xytext=(0, 9), textcoords="offset points", ha="center",
                    fontsize=7, color=MUTED)
    ax.set_yticks([0, 1], [_label(v) for v in variants], fontsize=9)
    ax.set_ylim(-0.75, 1.55)
    everything = [a * 100 for v in variants for a in v.test_accuracies] + [99.05, 98.92]
    span = max(everything) - min(everything)
    ax.set_xlim(min(everything) - 0.1 * span - 0.03, max(everything) + 0.1 * span + 0.03)
    ax.set_xlabel("test accuracy (%): dots = seeds (numbered), diamond = mean ± std, grey tick = reference report")
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    verdict = result.verdict
    margin = ("unknown with one seed" if verdict.margin_points is None
              else f"up to {verdict.margin_points:.2f} points")
    ax.set_title(f"Test accuracy per seed: batch norm {verdict.difference_points:+.2f} points; seeds alone "
                 f"account for {margin} -> {verdict.accuracy}", fontsize=10)
    return fig
