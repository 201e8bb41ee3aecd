"""Figures for looking inside the network: kernels, activation maps, occlusion grids and maps.

Each function takes a result of `kerascnn.inspect` or `kerascnn.occlusion` and returns a Figure.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.patches import Rectangle

from kerascnn.plots.common import BAD, DIVERGING, GOOD, new_figure, show_digit, symmetric_limit

__all__ = ["filter_grid", "activation_grid", "occlusion_grid", "occlusion_map"]

MUTED = "#57606a"  # secondary text: the reference report's numbers, notes


def _hide_ticks(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------- filters
def filter_grid(weights, title: str | None = None):
    """Kernels on ONE diverging colour scale centred on zero, with a colourbar.

    weights: a FilterWeights, its `weights` (F, C_in, kh, kw). One input channel (conv1): a grid of
    the F kernels. One filter (conv2 --filter N): a grid of its C_in input-channel slices. Both more
    than one (conv2 all): one F x C_in mosaic, a row per filter, a column per input channel.
    """
    w = np.asarray(weights.weights, np.float32)
    count, channels, kh, kw = w.shape
    limit = symmetric_limit(w)
    style = dict(cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
    if count > 1 and channels > 1:
        return _filter_mosaic(weights, w, style, title)
    if channels == 1:
        tiles = w[:, 0]
        labels = [f"filter {f}" if count <= 8 else str(f) for f in weights.filters]
        default = f"{weights.layer}: {count} kernels ({kh}x{kw}), raw weights"
    else:
        tiles = w[0]
        labels = [f"in {c}" for c in range(channels)]
        default = (f"{weights.layer} filter {weights.filters[0]}: its {channels} input-channel "
                   f"slices ({kh}x{kw}), raw weights")
    n = len(tiles)
    ncols = min(8, n)
    nrows = math.ceil(n / ncols)
    fig = new_figure(1.0 * ncols + 1.0, 1.05 * nrows + 0.6)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    image = None
    for i, ax in enumerate(axes):
        if i >= n:
            ax.axis("off")
            continue
        image = ax.imshow(tiles[i], **style)
        _hide_ticks(ax)
        ax.set_title(labels[i], fontsize=8, pad=2)
    fig.colorbar(image, ax=axes.tolist(), shrink=0.8, label="weight (blue < 0 < red)")
    fig.suptitle(title or default, fontsize=11)
    return fig


def _filter_mosaic(weights, w: np.ndarray, style: dict, title: str | None):
    count, channels, kh, kw = w.shape
    mosaic = np.full((count * (kh + 1) - 1, channels * (kw + 1) - 1), np.nan, np.float32)
    for f in range(count):
        for c in range(channels):
            mosaic[f * (kh + 1):f * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = w[f, c]
    side = min(9.0, 0.25 * max(count, channels) + 1.5)
    fig = new_figure(side + 1.4, side * count / channels + 0.7)
    ax = fig.subplots()
    ax.set_facecolor("#57606a")  # the gaps between kernels (NaN): dark, unlike any weight colour
    image = ax.imshow(mosaic, **style)
    step = 4 if max(count, channels) > 8 else 1
    ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(0, channels, step)],
                  [str(c) for c in range(0, channels, step)], fontsize=8)
    ax.set_yticks([f * (kh + 1) + (kh - 1) / 2 for f in range(0, count, step)],
                  [str(weights.filters[f]) for f in range(0, count, step)], fontsize=8)
    ax.set_xlabel("input channel (a map of conv1)")
    ax.set_ylabel(f"{weights.layer} filter")
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight (blue < 0 < red)")
    fig.suptitle(title or f"{weights.layer}: all {count} filters x {channels} input channels "
                          f"({kh}x{kw} each), raw weights", fontsize=11)
    return fig


# ---------------------------------------------------------------------------- activations
def activation_grid(result, title: str | None = None, input_title: str = "input"):
    """The input image on the left, and for each layer a grid of its maps on one colour scale
    per layer (0 to the layer's largest value for rectified maps, centred on zero otherwise).

    result: an ActivationMaps (maps[name]: (h, w, channels)).
    """
    names = list(result.maps)
    grids = []
    for name in names:
        channels = result.maps[name].shape[-1]
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
        sub.suptitle(f"{shown}: {channels} maps of {maps.shape[0]}x{maps.shape[1]}{note}", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ---------------------------------------------------------------------------- occlusion
def _color(pred: int, label: int) -> str:
    return GOOD if pred == label else BAD


def occlusion_grid(result, reference=None, title: str | None = None):
    """The clean image, then every occluded copy laid out where its patch is (row-major grid),
    each titled with P(label) and the prediction; mistakes in red.

    result: an OcclusionResult. reference: a ReferenceTable with one entry per position (the
    reference report's P(true) and prediction), written under each copy when given.
    """
    label = result.label
    nrows, ncols = result.grid_shape
    if reference is not None and len(reference.prob_true) != result.count:
        reference = None
    detail = 2 if ncols <= 5 else (1 if ncols <= 10 else 0)  # how much text fits in a cell
    cell = {2: 1.9, 1: 1.05, 0: max(0.22, 11.0 / ncols)}[detail]
    if reference is not None:
        cell += 0.15
    grid_w, grid_h = cell * ncols, cell * nrows
    clean_w = max(2.2, min(3.0, grid_h * 0.5))
    fig = new_figure(clean_w + grid_w + 0.2, max(grid_h, clean_w + 0.6) + (0.6 if title else 0.3))
    left, right = fig.subfigures(1, 2, width_ratios=[clean_w, grid_w], wspace=0.02)
    ax = left.subplots()
    name = {"true label": "P(true)", "clean prediction": "P(clean prediction)"}.get(
        result.label_source, f"P({result.label_source})")
    show_digit(ax, result.image,
               f"clean image\npred {result.clean_pred}, P({label}) = {result.clean_prob_true:.4f}",
               color=_color(result.clean_pred, label), fontsize=10, frame=MUTED)
    if reference is not None:
        ax.set_xlabel(f"grey: the reference report\n(PyTorch CNN, its own {label}):\n"
                      f"P({label}) and prediction", color=MUTED, fontsize=8)
    axes = np.atleast_1d(right.subplots(nrows, ncols, squeeze=False)).ravel()
    probs, preds, prob_preds = result.prob_true, result.pred, result.prob_pred
    for p, ax in enumerate(axes):
        color = _color(int(preds[p]), label)
        if detail == 2:
            text = f"#{p + 1}  P({label}) = {probs[p]:.4f}\npred {preds[p]} ({prob_preds[p]:.2f})"
        elif detail == 1:
            text = f"{probs[p]:.2f}" + ("" if preds[p] == label else f" \u2192{preds[p]}")
        else:
            text = None
        show_digit(ax, result.images[p], text, color=color, fontsize=9 if detail == 2 else 7,
                   frame=BAD if preds[p] != label else None)
        r, c = int(result.rows[p]), int(result.cols[p])
        if detail:
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), result.patch, result.patch, fill=False,
                                   edgecolor="#0969da", linewidth=1.0, linestyle="--"))
        if reference is not None:
            ref_p, ref_k = reference.prob_true[p], reference.pred[p]
            ax.set_xlabel(f"ref {ref_p:.4f}, pred {ref_k}", fontsize=8,
                          color=BAD if ref_k != label else MUTED)
    right.suptitle(f"{result.count} positions of a {result.patch}x{result.patch} patch of grey "
                   f"{result.fill:g}, stride {result.stride}: {name} = P({label}) and prediction",
                   fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def occlusion_map(result, title: str | None = None):
    """Sensitivity map from a stride-1 OcclusionResult: P(label) with the patch centred at each
    pixel, as a heat map over the image (outlined), beside the clean image and the most damaging
    occlusion. Dark = covering this region hurts the model most."""
    grid = result.prob_true_grid()
    nrows, ncols = grid.shape
    label = result.label
    half = (result.patch - 1) / 2
    fig = new_figure(10.5, 3.9 if not title else 4.3)
    axes = fig.subplots(1, 3, width_ratios=[1, 1.25, 1])
    show_digit(axes[0], result.image,
               f"clean image\npred {result.clean_pred}, P({label}) = {result.clean_prob_true:.4f}",
               color=_color(result.clean_pred, label), fontsize=10, frame=MUTED)
    ax = axes[1]
    height, width = result.image.shape[:2]
    # The image dimmed (its white at a quarter of full scale) where no patch centre reaches.
    ax.imshow(result.image.squeeze(), cmap="gray", vmin=0, vmax=4, interpolation="nearest")
    extent = (half - 0.5, half + ncols - 0.5, half + nrows - 0.5, half - 0.5)
    heat = ax.imshow(grid, cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest", extent=extent)
    ax.add_patch(Rectangle((extent[0], extent[3]), ncols, nrows, fill=False, edgecolor="#8c959f",
                           linewidth=0.8))
    ax.contour(result.image.squeeze(), levels=[0.5], colors=["#3fb950"], linewidths=1.2)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    _hide_ticks(ax)
    ax.set_title(f"P({label}) with the {result.patch}x{result.patch} patch centred on each pixel\n"
                 f"dark: covering there hurts; green: the digit", fontsize=10)
    fig.colorbar(heat, ax=ax, shrink=0.85, label=f"P({label})")
    worst = int(np.argmin(result.prob_true))
    show_digit(axes[2], result.images[worst],
               f"most damaging position (row {result.rows[worst]}, col {result.cols[worst]})\n"
               f"P({label}) = {result.prob_true[worst]:.4f}, pred {result.pred[worst]}",
               color=_color(int(result.pred[worst]), label), fontsize=9, frame=MUTED)
    low = float((result.prob_true < 0.5).mean())
    axes[2].set_xlabel(f"{low:.0%} of the {result.count} positions give P({label}) < 0.5",
                       fontsize=9, color=MUTED)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
