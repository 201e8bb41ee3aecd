"""Figures of a training run: loss and accuracy against iterations, predictions, confusion matrix."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from kerascnn.outputs.store import column
from kerascnn.plots.common import BAD, GOOD, WRONG, class_label, image_grid, mark_below, new_figure, plural

__all__ = ["moving_average", "loss_curves", "accuracy_curves", "prediction_grid", "confusion_figure"]

TRAIN, TRAIN_RAW, VALIDATION = "#1a56c4", "#8ab4f8", "#e8710a"
EPOCH_LINE = dict(color="0.6", lw=0.9, ls=":")


def moving_average(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, means) of a trailing moving average; positions index the last value of each window."""
    values = np.asarray(values, np.float64)
    window = max(1, min(window, len(values)))
    if len(values) == 0:
        return np.zeros(0, int), np.zeros(0)
    kernel = np.ones(window) / window
    return np.arange(window - 1, len(values)), np.convolve(values, kernel, mode="valid")


def _curves(steps: list[dict], key: str, ylabel: str, title: str, log: bool, raw: bool, zoom: bool = False):
    fig = new_figure(7.5, 4.2)
    ax = fig.subplots()
    step = column(steps, "step")
    values = column(steps, key)
    window = max(1, len(steps) // 80)  # about 80 windows over the run; 1 (no smoothing) for a tiny run
    if raw and window > 1:
        ax.plot(step, values, color=TRAIN_RAW, lw=0.4, alpha=0.5, label="train, each batch")
    idx, smooth = moving_average(values, window)
    if len(idx):
        ax.plot(step[idx], smooth, color=TRAIN, lw=1.6,
                label="train, each batch" if window == 1 else f"train, mean of the last {window} batches")
    val = column(steps, f"val_{key}")
    has_val = ~np.isnan(val)
    if has_val.any():
        ax.plot(step[has_val], val[has_val], "o-", color=VALIDATION, ms=3.5, lw=1.3, label="validation")
    epochs = column(steps, "epoch")
    boundaries = step[1:][np.diff(epochs) > 0] - 0.5
    for boundary in boundaries:
        ax.axvline(boundary, **EPOCH_LINE)
    ax.set_xlabel("iteration (batch)")
    if zoom:
        _zoom_on_top(ax, steps, [(step[idx], smooth, TRAIN), (step[has_val], val[has_val], VALIDATION)])
    handles, labels = ax.get_legend_handles_labels()
    if len(boundaries):
        handles.append(Line2D([], [], **EPOCH_LINE))
        labels.append("epoch end")
    if log:
        ax.set_yscale("log")
        # single batches reach 1e-8 late in training: keep the axis on the curves that matter
        floors = [np.nanmin(smooth) if len(idx) else np.nan, np.nanmin(val) if has_val.any() else np.nan]
        floor = np.nanmin(floors) if np.isfinite(floors).any() else np.nan
        if np.isfinite(floor) and floor > 0:
            ax.set_ylim(bottom=floor / 10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # iterations are whole: no 2.5 on a tiny run
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3, which="both" if log else "major")
    ax.legend(handles, labels, loc="best", fontsize=8)
    return fig


def loss_curves(steps: list[dict], title: str = "Cross-entropy loss") -> Figure:
    """Training loss per iteration (raw and smoothed) and validation loss, log scale; dotted lines
    mark epoch ends. `steps`: rows of steps.csv (epoch, step, loss, accuracy, val_loss, val_accuracy)."""
    return _curves(steps, "loss", "loss (log scale)", title, log=True, raw=True)


def accuracy_curves(steps: list[dict], title: str = "Accuracy") -> Figure:
    """Training accuracy (smoothed: one batch of 16 is too coarse to read) and validation accuracy,
    zoomed on the top; points under the axis are marked by triangles on its bottom edge and counted."""
    return _curves(steps, "accuracy", "accuracy", title, log=False, raw=False, zoom=True)


def _zoom_on_top(ax, steps: list[dict], curves) -> int:
    """Starts the axis just under the lowest validation point (at most 0.95; without validation, the
    lowest of the later half of the training curve), marks the points of
    `curves` [(x, y, colour)] that fall under it, and says how many; returns that count."""
    values = column(steps, "val_accuracy")
    if not np.isfinite(values).any():  # no validation: the later half of the training curve
        later = curves[0][1][len(curves[0][1]) // 2:]
        values = later if np.isfinite(later).any() else np.array([0.9])
    ax.set_ylim(max(0.0, min(float(np.nanmin(values)), 0.95) - 0.02), 1.002)
    below = sum(mark_below(ax, x, y, color) for x, y, color in curves)
    if below:
        lowest = min(float(np.nanmin(y)) for _, y, _ in curves if np.isfinite(y).any())
        ax.set_xlabel(f"iteration (batch)\n\u25bc on the bottom edge: {plural(below, 'point')} below the "
                      f"axis (lowest {lowest:.3f})")
    return below


def prediction_grid(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                    count: int = 20, mistakes: int = 10, class_names=None) -> Figure:
    """The first `count` test images and the first `mistakes` misclassified ones, titled
    "P: <predicted>  T: <true>" (class names when given, else numbers); a mistake has a red title
    starting with a cross and a thick dashed frame, which a greyscale print keeps.

    images: (N, H, W, C) in [0, 1], C = 1 or 3; labels, predictions: (N,) class indices."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    wrong = np.flatnonzero(predictions != labels)
    chosen = list(range(min(count, len(images))))
    chosen += [int(i) for i in wrong if i not in chosen][:mistakes]
    long_names = class_names is not None and max(len(str(n)) for n in class_names) > 3
    sep = "\n" if long_names else "  "  # "P: Sneaker\nT: Sandal" fits a cell; one line does not

    def title(i: int) -> str:
        mark = "" if predictions[i] == labels[i] else f"{WRONG} "
        return (f"{mark}P: {class_label(class_names, predictions[i], 11)}{sep}"
                f"T: {class_label(class_names, labels[i], 11)}")

    ok = [predictions[i] == labels[i] for i in chosen]
    shown_wrong = ok.count(False)
    fig = image_grid(images[chosen], [title(i) for i in chosen], [GOOD if o else BAD for o in ok],
                     ncols=10, frames=[None if o else BAD for o in ok],
                     frame_styles=["solid" if o else "dashed" for o in ok],
                     cell=1.25 if not long_names else 1.35, fontsize=9 if not long_names else 8,
                     suptitle=f"Test images: the first {min(count, len(images))}, then mistakes "
                              f"({shown_wrong} shown of {len(wrong)} in {len(labels)})\n"
                              f"P: predicted class, T: true class; {WRONG} and a dashed frame: a mistake")
    return fig


def confusion_figure(confusion: np.ndarray, title: str = "Confusion matrix (test split)",
                     class_names=None) -> Figure:
    """A K x K confusion matrix (rows: true class, columns: predicted), ticks named by `class_names`
    (numbers when None), counts written in the cells up to K = 20; the colour shows the
    row-normalised rate on a log scale so that rare mistakes stay visible."""
    from matplotlib.colors import LogNorm

    confusion = np.asarray(confusion)
    n = confusion.shape[0]
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    side = min(14.0, max(5.4, 0.42 * n + 1.2))
    names = [class_label(class_names, k, 14) for k in range(n)]
    fig = new_figure(side + 0.8, side)
    ax = fig.subplots()
    shown = np.where(rates > 0, rates, np.nan)
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1e-4, vmax=1))
    if n <= 20:
        size = 7.5 if n <= 10 else 6.5
        for i in range(n):
            for j in range(n):
                if confusion[i, j]:
                    ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=size,
                            color="white" if rates[i, j] > 0.3 else ("black" if i == j else BAD))
    ticks = 9 if n <= 20 else max(4.5, 9 - n / 20)
    rotate = class_names is not None and max(len(s) for s in names) > 2
    ax.set_xticks(range(n), names, fontsize=ticks, rotation=45 if rotate else 0,
                  ha="right" if rotate else "center", rotation_mode="anchor")
    ax.set_yticks(range(n), names, fontsize=ticks)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(confusion) / max(confusion.sum(), 1)
    note = "" if n <= 20 else f"\n({n} classes: counts left out, the colour gives the rate)"
    ax.set_title(f"{title}: accuracy {accuracy:.2%}{note}", fontsize=10)
    fig.colorbar(image, ax=ax, label="fraction of the true class (log)", shrink=0.85)
    return fig
