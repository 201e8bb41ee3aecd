"""Figures of the explanation experiments: the maps of one image, of a clean and an attacked image,
the deletion and insertion curves, and the model-randomisation check.

One rule for every map: a diverging scale centred on zero (white), red where the pixel raises the
explained logit, blue where it lowers it, each map scaled to its own largest |value| (the methods'
units differ: a gradient, a share of a logit, a logit drop), with that scale on a colour bar under it.
Grad-CAM is >= 0 by construction, so it is red or white. A greyscale image's outline (brightness 0.5)
is drawn over each map in grey.
"""
from __future__ import annotations

import numpy as np

from kerascnn.attributions.gradients import LABELS
from kerascnn.plots.common import (
    BAD,
    DIVERGING,
    GOOD,
    MUTED,
    WRONG,
    brightness,
    class_label,
    is_rgb,
    new_figure,
    show_digit,
    symmetric_limit,
)

__all__ = ["explanation_row", "draw_map", "method_label", "faithfulness_curves", "randomisation_curves",
           "randomisation_maps", "attack_explanations"]

COLORS = {"saliency": "#1f77b4", "smoothgrad": "#17becf", "integrated-gradients": "#d62728",
          "gradcam": "#2ca02c", "occlusion": "#9467bd", "random": "#7f7f7f",
          "brightness": "#24292f"}
#: The two orders a map must beat, drawn dashed and dotted.
BASELINE_STYLE = {"random": "--", "brightness": ":"}


def method_label(method: str) -> str:
    return LABELS.get(method, method)


def draw_map(ax, values: np.ndarray, image: np.ndarray | None = None, title: str | None = None,
             colorbar: bool = True, fontsize: float = 9):
    """One (H, W) map on the diverging scale [-max|v|, max|v|], the image's outline over it when the
    image is greyscale; a horizontal colour bar below when `colorbar`."""
    limit = symmetric_limit(values)
    shown = ax.imshow(values, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
    if image is not None and not is_rgb(image):
        level = brightness(image)
        if level.min() < 0.5 < level.max():
            ax.contour(level.reshape(level.shape[:2]), levels=[0.5], colors=["#6e7781"], linewidths=0.7)
    ax.set_xticks([])
    ax.set_yticks([])
    if not np.any(values):   # e.g. Grad-CAM when no position raises the logit: say so, not a blank square
        ax.text(0.5, 0.5, "all zero", transform=ax.transAxes, ha="center", va="center", fontsize=fontsize,
                color=MUTED)
    if title:
        ax.set_title(title, fontsize=fontsize, pad=3)
    if colorbar:
        bar = ax.figure.colorbar(shown, ax=ax, orientation="horizontal", shrink=0.9, pad=0.03, aspect=18)
        bar.ax.tick_params(labelsize=7)
        bar.ax.locator_params(nbins=3)
    return shown


def _heading(result) -> tuple[str, str]:
    """(title, colour): the image, what the model predicts, its true class and what is explained."""
    names = result.class_names
    pred, p = result.predicted, float(result.probabilities[result.predicted])
    true = "unknown" if result.label is None else class_label(names, result.label, 20)
    wrong = result.label is not None and result.label != pred
    mark = f"{WRONG} " if wrong else ""   # colour alone is lost in greyscale print
    title = (f"{mark}{result.description}: predicted {class_label(names, pred, 20)} (P = {p:.4f}), true class {true}"
             f"\nmaps of the logit of {class_label(names, result.target, 20)}"
             + (" (the prediction)" if result.target == pred else " (not the prediction)")
             + "; red raises it, blue lowers it, each map on its own scale")
    return title, BAD if wrong else "black"


def explanation_row(result):
    """The image, then one map per method, in one row. `result`: an experiments.explain.Explanation."""
    methods = list(result.maps)
    fig = new_figure(2.05 * (len(methods) + 1) + 0.2, 3.25)
    axes = np.atleast_1d(fig.subplots(1, len(methods) + 1))
    show_digit(axes[0], result.image, "the image", frame=MUTED)
    axes[0].set_xlabel(f"{result.image.shape[0]}x{result.image.shape[1]}, "
                       f"{'RGB' if is_rgb(result.image) else 'greyscale'}", fontsize=8, color=MUTED)
    for ax, method in zip(axes[1:], methods):
        draw_map(ax, result.maps[method], result.image, f"{method_label(method)}\n{result.method_note(method)}",
                 fontsize=8.5)
    title, color = _heading(result)
    fig.suptitle(title, fontsize=10, color=color)
    return fig


# ---------------------------------------------------------------------------- faithfulness
def faithfulness_curves(result):
    """Mean deletion and insertion curves (P(class) against the fraction of pixels removed / added,
    most important first) with a band of one standard error; the random order dashed in grey."""
    fig = new_figure(10.5, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    x = result.fractions
    for ax, kind, better in ((axes[0], "deletion", "lower"), (axes[1], "insertion", "higher")):
        for method in result.orders:
            curves = getattr(result, kind)[method]
            mean = curves.mean(axis=0)
            error = curves.std(axis=0) / np.sqrt(len(curves))
            auc = result.auc(kind, method).mean()
            style = dict(color=COLORS.get(method, MUTED), lw=1.4 if method in BASELINE_STYLE else 1.6,
                         ls=BASELINE_STYLE.get(method, "-"))
            ax.plot(x, mean, label=f"{method_label(method)} ({auc:.3f})", **style)
            ax.fill_between(x, mean - error, mean + error, color=style["color"], alpha=0.15, lw=0)
        ax.set_xlabel(f"fraction of pixels {'set to black' if kind == 'deletion' else 'restored from black'}, "
                      f"most important first")
        ax.set_title(f"{kind}: {better} area is better", fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="method (mean area)", title_fontsize=8,
                  loc="upper right" if kind == "deletion" else "lower right")
    axes[0].set_ylabel("P(class explained), mean over images")
    fig.suptitle(f"Deletion and insertion on {result.count} test images ({result.description}); "
                 f"bands: one standard error", fontsize=11)
    return fig


def randomisation_curves(result):
    """Mean rank correlation of each method's |map| with the trained model's, as layers are
    re-initialised from the top down (cumulatively)."""
    fig = new_figure(7.5, 4.2)
    ax = fig.subplots()
    stages = result.stages
    x = np.arange(len(stages))
    for method in result.correlation:
        color = COLORS.get(method, MUTED)
        ax.plot(x, result.correlation[method].mean(axis=1), "o-", color=color, label=method_label(method), lw=1.6, ms=4)
        ax.plot(x, result.correlation_ink[method].mean(axis=1), "o--", color=color, lw=1.0, ms=3, alpha=0.8)
    ax.plot([], [], "k-", lw=1.6, label="all pixels")
    ax.plot([], [], "k--", lw=1.0, label="non-black pixels")
    ax.axhline(0, color=MUTED, lw=0.8)
    ax.set_xticks(x, ["trained"] + [f"+{s}" for s in stages[1:]], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(-0.35, 1.05)
    ax.set_xlabel("layers re-initialised, from the output down (cumulative)")
    ax.set_ylabel("Spearman rank correlation of |map|\nwith the trained model's")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Model randomisation (Adebayo et al. 2018), mean of {result.randomised_count} images:\n"
                 f"a map that stays high does not depend on the weights", fontsize=10)
    return fig


def randomisation_maps(result):
    """One image's maps (rows: methods) under the cascading re-initialisation (columns)."""
    methods = list(result.example_maps)
    stages = result.stages
    fig = new_figure(1.35 * (len(stages) + 1) + 0.3, 1.45 * len(methods) + 0.8)
    axes = np.atleast_2d(fig.subplots(len(methods), len(stages) + 1, squeeze=False))
    for row, method in enumerate(methods):
        show_digit(axes[row, 0], result.example_image, None, frame=None)
        axes[row, 0].set_ylabel(method_label(method), fontsize=8)
        for col, stage in enumerate(stages):
            draw_map(axes[row, col + 1], result.example_maps[method][col], result.example_image,
                     ("trained" if col == 0 else f"+{stage}") if row == 0 else None, colorbar=False, fontsize=8)
    fig.suptitle("One image's maps as layers are re-initialised from the output down "
                 "(each map on its own scale)", fontsize=10)
    return fig


# ---------------------------------------------------------------------------- attacks
def attack_explanations(result):
    """Two rows, each the image and its maps: the clean image explaining its prediction, the
    attacked image explaining its own (both outlined with the clean image); the noise beside.
    `result`: explain_attack.Result."""
    clean, adversarial = result.clean, result.adversarial
    methods = list(clean.maps)
    names = clean.class_names
    fig = new_figure(2.0 * (len(methods) + 2) + 0.2, 6.2)
    axes = np.atleast_2d(fig.subplots(2, len(methods) + 2))
    for row, (e, what) in enumerate(((clean, "clean"), (adversarial, "attacked"))):
        pred = e.predicted
        ok = e.label is None or pred == e.label
        show_digit(axes[row, 0], e.image, f"{what}: pred {class_label(names, pred, 12)}\n"
                                          f"P = {e.probabilities[pred]:.3f}", color=GOOD if ok else BAD,
                   frame=MUTED, fontsize=8.5)
        for col, method in enumerate(methods):
            note = "" if row == 0 else f"\nrank corr. with clean {result.correlation[method]:+.2f}"
            draw_map(axes[row, col + 1], e.maps[method], clean.image,
                     f"{method_label(method)}, logit {class_label(names, e.target, 10)}{note}", fontsize=8)
        axes[row, -1].axis("off")
    noise = result.noise
    limit = symmetric_limit(noise)
    shown = axes[0, -1].imshow(noise if noise.ndim == 2 else noise.mean(axis=-1), cmap=DIVERGING,
                               vmin=-limit, vmax=limit, interpolation="nearest")
    axes[0, -1].axis("on")
    axes[0, -1].set_xticks([])
    axes[0, -1].set_yticks([])
    axes[0, -1].set_title(f"the noise added\nL2 {np.sqrt(np.square(noise).sum()):.2f}, "
                          f"Linf {np.abs(noise).max():.3f}", fontsize=8.5)
    bar = fig.colorbar(shown, ax=axes[0, -1], orientation="horizontal", shrink=0.9, pad=0.03, aspect=18)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(f"{result.description}: the {result.attack} attack towards {class_label(names, result.target, 16)}; "
                 f"each row explains its own prediction's logit", fontsize=10)
    return fig
