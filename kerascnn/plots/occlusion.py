"""Figures of the occlusion experiment: the grid of occluded copies (or, for many positions, the map
of P(label) over them) and the stride-1 sensitivity map.

Images are (H, W, 1) or (H, W, 3), any size; classes are written by name when the result has
`class_names`.
"""
from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.patches import Rectangle

from kerascnn.plots.common import BAD, GOOD, MUTED, WRONG, brightness, class_label, new_figure, plural, show_digit

__all__ = ["occlusion_grid", "occlusion_map", "MAX_THUMBNAILS"]

#: Above this many patch positions the occlusion grid draws P(label) as a map, not one copy each.
MAX_THUMBNAILS = 100


def _names(result):
    return getattr(result, "class_names", None)


def _color(pred: int, label: int) -> str:
    return GOOD if pred == label else BAD


def _clean_title(result, width: int = 14) -> str:
    names, label = _names(result), result.label
    return (f"clean image\npred {class_label(names, result.clean_pred, width)}, "
            f"P({class_label(names, label, width)}) = {result.clean_prob_true:.4f}")


def _wrap(text: str, inches: float, fontsize: float) -> str:
    """`text` broken into lines that fit `inches` at `fontsize` (about 0.55 em per character)."""
    return "\n".join(textwrap.wrap(text, max(20, int(inches * 72 / (0.55 * fontsize)))))


def occlusion_grid(result, reference=None, title: str | None = None):
    """The clean image, then every occluded copy laid out where its patch is (row-major grid),
    each titled with P(label) and the prediction; mistakes in red, with a cross and a dashed frame.
    Above MAX_THUMBNAILS positions, P(label) at each position is drawn as one heat map instead.

    result: an OcclusionResult. reference: a ReferenceTable with one entry per position (the
    reference report's P(true) and prediction), written under each copy when given.
    """
    names, label = _names(result), result.label
    nrows, ncols = result.grid_shape
    many = result.count > MAX_THUMBNAILS
    if reference is not None and (many or len(reference.prob_true) != result.count):
        reference = None
    detail = 2 if ncols <= 5 else (1 if ncols <= 10 else 0)  # how much text fits in a cell
    cell = {2: 1.9, 1: 1.05, 0: max(0.22, 11.0 / ncols)}[detail]
    if reference is not None:
        cell += 0.15
    grid_w, grid_h = (5.2, 4.4) if many else (cell * ncols, cell * nrows)
    clean_w = max(2.4, min(3.0, grid_h * 0.5))
    width = max(clean_w + grid_w + 0.2, 6.5)  # the description above needs room, however few positions
    kind = {"true label": "the true class", "clean prediction": "the clean prediction"}.get(
        result.label_source, result.label_source)
    shown = class_label(names, label, 20)
    what = (f"{plural(result.count, 'position')} of a {result.patch}x{result.patch} patch of grey "
            f"{result.fill:g}, stride {result.stride}; followed: P({shown}), {kind}")
    if many:
        what += f"; too many to draw one by one: P({shown}) at each position as a map"
    header = _wrap(what, width - 0.3, 10)
    if title:
        header = f"{title}\n{header}"
    fig = new_figure(width, max(grid_h, clean_w + 0.6) + 0.22 * (header.count("\n") + 1) + 0.3)
    fig.suptitle(header, fontsize=10)
    left, right = fig.subfigures(1, 2, width_ratios=[clean_w, width - clean_w], wspace=0.02)
    ax = left.subplots()
    show_digit(ax, result.image, _clean_title(result), color=_color(result.clean_pred, label),
               fontsize=10, frame=MUTED)
    if reference is not None:
        ax.set_xlabel(f"grey: the reference report\n(PyTorch CNN, its own {shown}):\n"
                      f"P({shown}) and prediction", color=MUTED, fontsize=8)
    if many:
        _position_map(right, result)
        return fig
    axes = np.atleast_1d(right.subplots(nrows, ncols, squeeze=False)).ravel()
    probs, preds, prob_preds = result.prob_true, result.pred, result.prob_pred
    short = class_label(names, label, 8)
    for p, ax in enumerate(axes):
        ok = preds[p] == label
        mark = "" if ok else f"{WRONG} "
        if detail == 2:
            text = (f"{mark}#{p + 1}  P({short}) = {probs[p]:.4f}\n"
                    f"pred {class_label(names, preds[p], 10)} ({prob_preds[p]:.2f})")
        elif detail == 1:
            text = f"{probs[p]:.2f}" + ("" if ok else f" \u2192{class_label(names, preds[p], 6)}")
        else:
            text = None
        show_digit(ax, result.copy(p), text, color=_color(int(preds[p]), label),
                   fontsize=9 if detail == 2 else 7, frame=None if ok else BAD,
                   frame_style="dashed", frame_width=2.0 if detail else 1.2)
        r, c = int(result.rows[p]), int(result.cols[p])
        if detail:
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), result.patch, result.patch, fill=False,
                                   edgecolor="#0969da", linewidth=1.0, linestyle="--"))
        if reference is not None:
            ref_p, ref_k = reference.prob_true[p], reference.pred[p]
            ax.set_xlabel(f"ref {ref_p:.4f}, pred {class_label(names, ref_k, 8)}", fontsize=8,
                          color=BAD if ref_k != label else MUTED)
    return fig


def _position_map(sub, result) -> None:
    """P(label) over the grid of patch positions, each cell at its patch's top-left pixel."""
    names, label = _names(result), result.label
    grid = result.prob_true_grid()
    rows, cols = np.unique(result.rows), np.unique(result.cols)
    step_r = float(rows[1] - rows[0]) if len(rows) > 1 else 1.0
    step_c = float(cols[1] - cols[0]) if len(cols) > 1 else 1.0
    extent = (cols[0] - step_c / 2, cols[-1] + step_c / 2, rows[-1] + step_r / 2, rows[0] - step_r / 2)
    ax = sub.subplots()
    heat = ax.imshow(grid, cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest", extent=extent)
    ax.set_xlabel("patch's top-left column (pixel)")
    ax.set_ylabel("patch's top-left row (pixel)")
    wrong = int((result.pred != label).sum())
    ax.set_title(f"P({class_label(names, label, 16)}) at each position; dark: covering there hurts\n"
                 f"{wrong} of {result.count} positions change the prediction", fontsize=9)
    sub.colorbar(heat, ax=ax, shrink=0.85, label=f"P({class_label(names, label, 16)})")


def occlusion_map(result, title: str | None = None):
    """Sensitivity map from an OcclusionResult at a small stride: P(label) for each patch position, drawn at
    the patch's centre, as a heat map over the (dimmed) image, beside the clean image and the most
    damaging occlusion (given by its top-left corner and its centre). Dark = covering this region
    hurts the model most. RGB images are dimmed in colour; the outline follows their channel mean."""
    grid = result.prob_true_grid()
    nrows, ncols = grid.shape
    names, label = _names(result), result.label
    shown = class_label(names, label, 16)
    half = (result.patch - 1) / 2
    fig = new_figure(10.5, 3.9 if not title else 4.3)
    axes = fig.subplots(1, 3, width_ratios=[1, 1.25, 1])
    show_digit(axes[0], result.image, _clean_title(result), color=_color(result.clean_pred, label),
               fontsize=10, frame=MUTED)
    ax = axes[1]
    image = np.asarray(result.image, np.float32)
    height, width = image.shape[:2]
    # The image dimmed (to a quarter of its brightness) where no patch centre reaches.
    show_digit(ax, image * 0.25)
    step = result.stride  # position j's centre is at half + j * step
    extent = (half - step / 2, half + (ncols - 0.5) * step, half + (nrows - 0.5) * step, half - step / 2)
    heat = ax.imshow(grid, cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest", extent=extent)
    ax.add_patch(Rectangle((extent[0], extent[3]), ncols * step, nrows * step, fill=False, edgecolor="#8c959f",
                           linewidth=0.8))
    level = brightness(image)
    if level.min() < 0.5 < level.max():
        ax.contour(level, levels=[0.5], colors=["#3fb950"], linewidths=1.2)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_title(f"P({shown}) with the {result.patch}x{result.patch} patch, drawn at its centre\n"
                 f"dark: covering there hurts; green: brightness 0.5 outline", fontsize=10)
    fig.colorbar(heat, ax=ax, shrink=0.85, label=f"P({shown})")
    worst = int(np.argmin(result.prob_true))
    r, c = int(result.rows[worst]), int(result.cols[worst])
    show_digit(axes[2], result.copy(worst),
               f"most damaging patch\ntop-left (row {r}, col {c}), centre ({r + half:g}, {c + half:g})\n"
               f"P({class_label(names, label, 10)}) = {result.prob_true[worst]:.4f}, "
               f"pred {class_label(names, result.pred[worst], 14)}",
               color=_color(int(result.pred[worst]), label), fontsize=9, frame=MUTED)
    low = float((result.prob_true < 0.5).mean())
    axes[2].set_xlabel(f"{low:.0%} of the {plural(result.count, 'position')} give P({shown}) < 0.5",
                       fontsize=9, color=MUTED)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
