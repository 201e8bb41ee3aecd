"""Shared drawing helpers: a headless backend, images (greyscale or RGB, any size), grids of images,
class names in titles, and marks that survive greyscale printing."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (and work with no display)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

__all__ = ["new_figure", "show_digit", "image_grid", "GOOD", "BAD", "MUTED", "DIVERGING", "WRONG",
           "symmetric_limit", "class_label", "shorten", "plural", "is_rgb", "brightness",
           "signed_map", "mark_below", "close_figures"]

GOOD = "#1a7f37"   # titles of correct predictions / successes
BAD = "#cf222e"    # titles of mistakes / failures
MUTED = "#57606a"  # secondary text and neutral frames
DIVERGING = "RdBu_r"  # signed quantities (weights, noise): blue negative, red positive, white zero
WRONG = "\u2717"   # the mark beside a mistake's title: colour alone is lost in greyscale print


def new_figure(width: float, height: float):
    """A Figure of the given size in inches, with constrained layout."""
    return plt.figure(figsize=(width, height), layout="constrained")


# ---------------------------------------------------------------------------- text
def shorten(text: str, width: int | None) -> str:
    """`text` cut to at most `width` characters, an ellipsis marking the cut (None: unchanged)."""
    if width is None or len(text) <= width:
        return text
    return text[:max(1, width - 1)] + "\u2026"


def class_label(names, k, width: int | None = None) -> str:
    """The name of class `k` ("Sneaker"), or its number when `names` is None or lacks it ("7");
    cut to `width` characters with an ellipsis where a cell is tight."""
    k = int(k)
    if names is None or not 0 <= k < len(names):
        return str(k)
    return shorten(str(names[k]), width)


def plural(count: int, noun: str) -> str:
    """'1 position', '9 positions'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------------- images
def is_rgb(image: np.ndarray) -> bool:
    """True for an (H, W, 3) image; (H, W) and (H, W, 1) are greyscale."""
    image = np.asarray(image)
    return image.ndim == 3 and image.shape[-1] == 3


def brightness(image: np.ndarray) -> np.ndarray:
    """(H, W): the image itself when greyscale, the mean of its channels when RGB."""
    image = np.asarray(image, np.float32)
    return image.mean(axis=-1) if image.ndim == 3 else image


def signed_map(values: np.ndarray) -> np.ndarray:
    """(H, W) of a signed (H, W[, C]) change such as adversarial noise: the channel mean, so that one
    diverging colour scale and one colour bar read the same for greyscale and RGB. Changes of
    opposite sign in different channels of one pixel partly cancel; norms are taken elsewhere."""
    return brightness(values)


def show_digit(ax, image: np.ndarray, title: str | None = None, color: str = "black",
               frame: str | None = None, fontsize: float = 9, cmap: str = "gray", vmin=0.0, vmax=1.0,
               frame_style: str = "solid", frame_width: float = 2.5):
    """Draws one image on `ax`, without ticks: (H, W[, 1]) in [vmin, vmax] in `cmap` (grey), or
    (H, W, 3) in colour, rescaled from [vmin, vmax] to [0, 1] and clipped. `frame` colours its
    border, drawn `frame_style` ("solid", "dashed", "dotted") and `frame_width` points wide."""
    image = np.asarray(image, np.float32)
    if is_rgb(image):
        span = (vmax - vmin) or 1.0
        ax.imshow(np.clip((image - vmin) / span, 0.0, 1.0), interpolation="nearest")
    else:
        ax.imshow(image.reshape(image.shape[:2]), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, color=color, fontsize=fontsize, pad=3)
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_color(frame)
            spine.set_linewidth(frame_width)
            spine.set_linestyle(frame_style)
    return ax


def image_grid(images, titles=None, colors=None, ncols: int = 10, suptitle: str | None = None,
               cell: float = 1.25, frames=None, frame_styles=None, fontsize: float = 9):
    """A grid of images with optional per-image titles, title colours, frame colours and frame
    styles (see show_digit)."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    lines = suptitle.count("\n") + 1 if suptitle else 0
    fig = new_figure(cell * ncols, cell * nrows + 0.25 * lines + 0.25)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.axis("off")
            continue
        show_digit(ax, images[i], titles[i] if titles else None, colors[i] if colors else "black",
                   frames[i] if frames else None, fontsize=fontsize,
                   frame_style=frame_styles[i] if frame_styles else "solid")
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def symmetric_limit(values: np.ndarray) -> float:
    """A colour limit centred on zero covering all `values` (never 0, so imshow does not fail)."""
    limit = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return limit if limit > 0 else 1.0


# ---------------------------------------------------------------------------- axes
def mark_below(ax, x, y, color: str) -> int:
    """Marks, with a triangle on the bottom edge of `ax`, each point (x, y) under the axis' current
    lower limit (call after setting the limits); returns how many there are."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    below = np.isfinite(y) & (y < ax.get_ylim()[0])
    if below.any():
        transform = blended_transform_factory(ax.transData, ax.transAxes)
        ax.plot(x[below], np.zeros(int(below.sum())), "v", color=color, ms=5, clip_on=False,
                transform=transform, zorder=4)
    return int(below.sum())


def close_figures(figs) -> None:
    """Closes figures that will not be saved (a failed write must not leave them open)."""
    for fig in figs:
        plt.close(fig)
