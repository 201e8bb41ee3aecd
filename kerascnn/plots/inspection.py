"""Figures for looking inside the network: kernels and activation maps.

Each function takes a result of the filters or activations experiment and returns a Figure.
Images are (H, W, 1) or (H, W, 3), any size; classes are written by name when the result has
`class_names`.
"""
from __future__ import annotations

import math
import textwrap

import numpy as np

from kerascnn.plots.common import DIVERGING, MUTED, class_label, new_figure, show_digit, symmetric_limit

__all__ = ["filter_grid", "activation_grid"]


def _hide_ticks(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------- filters
def filter_grid(weights, title: str | None = None):
    """Kernels on ONE diverging colour scale centred on zero, with a colourbar.

    weights: a FilterWeights, its `weights` (F, C_in, kh, kw). One input channel (conv1 of a
    greyscale model): a grid of the F kernels. One filter (--filter N): a grid of its C_in
    input-channel slices. Several filters of 2 to 4 input channels (conv1 of an RGB model): a grid of
    filters, each drawn as its channel slices side by side (R | G | B). More channels (conv2 all): one
    F x C_in mosaic, a row per filter, a column per input channel.

    RGB kernels are drawn as their three slices on the diverging scale, not as one colour tile: a
    tile must map zero to grey and rescale per figure, so a negative weight looks like the
    complementary colour and the sizes cannot be read off a colour bar; slices keep the one reading
    every filter figure has (blue < 0 < red, raw values). Three input channels are taken to be
    R, G, B: the first convolution of a colour model, the only common layer with three inputs.
    """
    w = np.asarray(weights.weights, np.float32)
    count, channels, kh, kw = w.shape
    limit = symmetric_limit(w)
    style = dict(cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
    if count > 1 and channels > 4:
        return _filter_mosaic(weights, w, style, title)
    if count > 1 and channels > 1:
        tiles = [_side_by_side(w[f]) for f in range(count)]
        labels = [f"filter {f}" for f in weights.filters]
        slices = "R | G | B" if channels == 3 else " | ".join(f"in {c}" for c in range(channels))
        default = (f"{weights.layer}: {count} kernels ({kh}x{kw}x{channels}), raw weights; each drawn as "
                   f"its input-channel slices {slices}")
        ncols = max(1, min(count, 16 // (channels + 1)))
    elif channels == 1:
        tiles = list(w[:, 0])
        labels = [f"filter {f}" if count <= 8 else str(f) for f in weights.filters]
        default = f"{weights.layer}: {count} kernels ({kh}x{kw}), raw weights"
        ncols = min(8, count)
    else:
        tiles = list(w[0])
        names = ("R", "G", "B") if channels == 3 else None
        labels = [f"in {c}" + (f" ({names[c]})" if names else "") for c in range(channels)]
        default = (f"{weights.layer} filter {weights.filters[0]}: its {channels} input-channel "
                   f"slices ({kh}x{kw}), raw weights")
        ncols = min(8, channels)
    n = len(tiles)
    nrows = math.ceil(n / ncols)
    aspect = tiles[0].shape[1] / tiles[0].shape[0]
    unit = 1.0 if aspect == 1 else 0.72  # inches per kernel height; side-by-side slices need less
    width = max(unit * aspect * ncols + 1.0, 5.0)
    heading = "\n".join(textwrap.wrap(title or default, int((width - 0.2) * 72 / (0.55 * 11))))
    fig = new_figure(width, max((unit + 0.05) * nrows + 0.35 + 0.25 * (heading.count("\n") + 1), 2.6))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    image = None
    for i, ax in enumerate(axes):
        if i >= n:
            ax.axis("off")
            continue
        ax.set_facecolor(MUTED)  # the gaps between slices (NaN): dark, unlike any weight colour
        image = ax.imshow(tiles[i], **style)
        _hide_ticks(ax)
        ax.set_title(labels[i], fontsize=8, pad=2)
    fig.colorbar(image, ax=axes.tolist(), shrink=0.8, label="weight (blue < 0 < red)")
    fig.suptitle(heading, fontsize=11)
    return fig


def _side_by_side(kernel: np.ndarray) -> np.ndarray:
    """(C, kh, kw) -> (kh, C * (kw + 1) - 1): the slices in a row, NaN (drawn dark) between them."""
    channels, kh, kw = kernel.shape
    row = np.full((kh, channels * (kw + 1) - 1), np.nan, np.float32)
    for c in range(channels):
        row[:, c * (kw + 1):c * (kw + 1) + kw] = kernel[c]
    return row


def _filter_mosaic(weights, w: np.ndarray, style: dict, title: str | None):
    count, channels, kh, kw = w.shape
    mosaic = np.full((count * (kh + 1) - 1, channels * (kw + 1) - 1), np.nan, np.float32)
    for f in range(count):
        for c in range(channels):
            mosaic[f * (kh + 1):f * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = w[f, c]
    cell = min(0.3, 14.0 / max(count, channels))  # inches per kernel: 0.3 for 32x32, readable at 100%
    fig = new_figure(cell * channels + 2.2, cell * count + 1.3)
    ax = fig.subplots()
    ax.set_facecolor(MUTED)  # the gaps between kernels (NaN): dark, unlike any weight colour
    image = ax.imshow(mosaic, **style)
    # a tick at every kernel, a number at every 4th (8th past 64), on all four sides
    every = 1 if max(count, channels) <= 8 else (4 if max(count, channels) <= 64 else 8)
    ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(channels)], minor=True)
    ax.set_yticks([f * (kh + 1) + (kh - 1) / 2 for f in range(count)], minor=True)
    ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(0, channels, every)],
                  [str(c) for c in range(0, channels, every)])
    ax.set_yticks([f * (kh + 1) + (kh - 1) / 2 for f in range(0, count, every)],
                  [str(weights.filters[f]) for f in range(0, count, every)])
    ax.tick_params(which="both", top=True, right=True, labeltop=True, labelright=True, labelsize=10)
    ax.tick_params(which="major", length=5)
    ax.tick_params(which="minor", length=2.5)
    ax.set_xlabel("input channel", fontsize=11)
    ax.set_ylabel(f"{weights.layer} filter", fontsize=11)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight (blue < 0 < red)")
    fig.suptitle(title or f"{weights.layer}: all {count} filters x {channels} input channels "
                          f"({kh}x{kw} each), raw weights", fontsize=11)
    return fig


# ---------------------------------------------------------------------------- activations
#: Maps drawn per layer (a layer of 1,280 channels would be 1,280 subplots): the first ones.
MAX_MAPS = 64


def activation_grid(result, title: str | None = None, input_title: str | None = None):
    """The input image on the left, and for each layer a grid of its maps on one colour scale
    per layer (0 to the layer's largest value for rectified maps, centred on zero otherwise).

    result: an ActivationMaps (image (H, W, C), maps[name]: (h, w, channels), probabilities (K,),
    class_names). input_title: the title over the input; None: "input" and the predicted class.
    """
    if input_title is None:
        probabilities = np.asarray(result.probabilities)
        k = int(probabilities.argmax())
        names = getattr(result, "class_names", None)
        input_title = (f"input\npredicted {class_label(names, k, 16)} "
                       f"(P = {probabilities[k]:.4f})")
    names = list(result.maps)
    grids = []
    for name in names:
        channels = min(result.maps[name].shape[-1], MAX_MAPS)
        ncols = min(8, channels)
        grids.append((ncols, math.ceil(channels / ncols)))
    width = 2.6 + max(ncols for ncols, _ in grids) * 0.95 + 0.9
    height = sum(0.95 * nrows + 0.45 for _, nrows in grids) + (0.4 if title else 0)
    fig = new_figure(width, max(height, 2.8))
    left, right = fig.subfigures(1, 2, width_ratios=[2.6, width - 2.6], wspace=0.02)
    ax = left.subplots()
    show_digit(ax, result.image, input_title, fontsize=10, frame=MUTED)
    layer_figs = np.atleast_1d(right.subfigures(len(names), 1, height_ratios=[r for _, r in grids]))
    for sub, name, (ncols, nrows) in zip(layer_figs, names, grids):
        maps = result.maps[name]
        total = maps.shape[-1]
        maps = maps[..., :MAX_MAPS]   # the colour scale and the count of dead maps: of those drawn
        channels = maps.shape[-1]
        if float(maps.min()) >= 0:
            style = dict(cmap="magma", vmin=0.0, vmax=max(float(maps.max()), 1e-6))
            label = "activation"
        else:
            limit = symmetric_limit(maps)
            style = dict(cmap=DIVERGING, vmin=-limit, vmax=limit)
            label = "activation (signed)"
        axes = np.atleast_1d(sub.subplots(nrows, ncols, squeeze=False)).ravel()
        image = None
        for i, ax in enumerate(axes):
            if i >= channels:
                ax.axis("off")
                continue
            image = ax.imshow(maps[..., i], interpolation="nearest", **style)
            _hide_ticks(ax)
            ax.set_title(str(i), fontsize=7, pad=1)
        sub.colorbar(image, ax=axes.tolist(), shrink=0.85, label=label)
        layer = result.layers.get(name, name)
        shown = name if layer == name else f"{name} ({layer})"
        dead = int(np.sum(maps.reshape(-1, channels).max(axis=0) <= 0))
        note = f" ({dead} all zero for this image)" if dead else ""
        count = f"{channels} maps" if channels == total else f"the first {channels} of {total} maps"
        sub.suptitle(f"{shown}: {count} of {maps.shape[0]}x{maps.shape[1]}{note}", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
