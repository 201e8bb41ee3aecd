"""Shared drawing helpers: a headless backend, digit images, grids of images."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (and work with no display)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["new_figure", "show_digit", "image_grid", "GOOD", "BAD", "DIVERGING", "symmetric_limit"]

GOOD = "#1a7f37"   # titles of correct predictions / successes
BAD = "#cf222e"    # titles of mistakes / failures
DIVERGING = "RdBu_r"  # signed quantities (weights, noise): blue negative, red positive, white zero


def new_figure(width: float, height: float):
    """A Figure of the given size in inches, with constrained layout."""
    return plt.figure(figsize=(width, height), layout="constrained")


def show_digit(ax, image: np.ndarray, title: str | None = None, color: str = "black",
               frame: str | None = None, fontsize: float = 9, cmap: str = "gray", vmin=0.0, vmax=1.0):
    """Draws one (28, 28[, 1]) image in [0, 1] on `ax`, without ticks; `frame` colours its border."""
    ax.imshow(np.asarray(image).squeeze(), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, color=color, fontsize=fontsize, pad=3)
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_color(frame)
            spine.set_linewidth(2.5)
    return ax


def image_grid(images, titles=None, colors=None, ncols: int = 10, suptitle: str | None = None,
               cell: float = 1.25, frames=None):
    """A grid of digit images with optional per-image titles, title colours and frame colours."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig = new_figure(cell * ncols, cell * nrows + (0.4 if suptitle else 0) + 0.25)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.axis("off")
            continue
        show_digit(ax, images[i], titles[i] if titles else None, colors[i] if colors else "black",
                   frames[i] if frames else None)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def symmetric_limit(values: np.ndarray) -> float:
    """A colour limit centred on zero covering all `values` (never 0, so imshow does not fail)."""
    limit = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return limit if limit > 0 else 1.0
