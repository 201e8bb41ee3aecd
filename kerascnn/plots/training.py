"""Figures of a training run: loss and accuracy against iterations, predictions, confusion matrix."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from kerascnn.plots.common import BAD, GOOD, image_grid, new_figure
from kerascnn.store import column

__all__ = ["moving_average", "loss_curves", "accuracy_curves", "prediction_grid", "confusion_figure"]


def moving_average(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, means) of a trailing moving average; positions index the last value of each window."""
    values = np.asarray(values, np.float64)
    window = max(1, min(window, len(values)))
    if len(values) == 0:
        return np.zeros(0, int), np.zeros(0)
    kernel = np.ones(window) / window
    return np.arange(window - 1, len(values)), np.convolve(values, kernel, mode="valid")


def _curves(steps: list[dict], key: str, ylabel: str, title: str, log: bool, raw: bool):
    fig = new_figure(7.5, 4.2)
    ax = fig.subplots()
    step = column(steps, "step")
    values = column(steps, key)
    window = max(1, len(steps) // 80)
    if raw:
        ax.plot(step, values, color="#8ab4f8", lw=0.4, alpha=0.5, label="train, each batch")
    idx, smooth = moving_average(values, window)
    if len(idx):
        ax.plot(step[idx], smooth, color="#1a56c4", lw=1.6, label=f"train, mean of {window} batches")
    val = column(steps, f"val_{key}")
    has_val = ~np.isnan(val)
    if has_val.any():
        ax.plot(step[has_val], val[has_val], "o-", color="#e8710a", ms=3.5, lw=1.3, label="validation")
    epochs = column(steps, "epoch")
    for boundary in step[1:][np.diff(epochs) > 0]:
        ax.axvline(boundary - 0.5, color="0.75", lw=0.8, ls=":")
    if log:
        ax.set_yscale("log")
        # single batches reach 1e-8 late in training: keep the axis on the curves that matter
        floors = [np.nanmin(smooth) if len(idx) else np.nan, np.nanmin(val) if has_val.any() else np.nan]
        floor = np.nanmin(floors) if np.isfinite(floors).any() else np.nan
        if np.isfinite(floor) and floor > 0:
            ax.set_ylim(bottom=floor / 10)
    ax.set_xlabel("iteration (batch)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3, which="both" if log else "major")
    ax.legend(loc="best", fontsize=8)
    return fig


def loss_curves(steps: list[dict], title: str = "Cross-entropy loss") -> Figure:
    """Training loss per iteration (raw and smoothed) and validation loss, log scale; dotted lines
    mark epoch ends. `steps`: rows of steps.csv (epoch, step, loss, accuracy, val_loss, val_accuracy)."""
    return _curves(steps, "loss", "loss (log scale)", title, log=True, raw=True)


def accuracy_curves(steps: list[dict], title: str = "Accuracy") -> Figure:
    """Training accuracy (smoothed: one batch of 16 is too coarse to read) and validation accuracy."""
    fig = _curves(steps, "accuracy", "accuracy", title, log=False, raw=False)
    ax = fig.axes[0]
    values = column(steps, "val_accuracy")
    low = np.nanmin(values) if np.isfinite(values).any() else 0.9
    ax.set_ylim(max(0.0, min(low, 0.95) - 0.02), 1.002)
    return fig


def prediction_grid(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                    count: int = 20, mistakes: int = 10) -> Figure:
    """The first `count` test images and the first `mistakes` misclassified ones, titled
    "P: <pred>  T: <true>"; mistakes in red with a red frame."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    wrong = np.flatnonzero(predictions != labels)
    chosen = list(range(min(count, len(images))))
    chosen += [int(i) for i in wrong if i not in chosen][:mistakes]
    titles = [f"P: {predictions[i]}  T: {labels[i]}" for i in chosen]
    colors = [GOOD if predictions[i] == labels[i] else BAD for i in chosen]
    frames = [None if predictions[i] == labels[i] else BAD for i in chosen]
    shown_wrong = sum(predictions[i] != labels[i] for i in chosen)
    fig = image_grid(images[chosen], titles, colors, ncols=10, frames=frames,
                     suptitle=f"Test images: the first {min(count, len(images))}, then mistakes "
                              f"(red: {shown_wrong} shown of {len(wrong)} in {len(labels)})")
    return fig


def confusion_figure(confusion: np.ndarray, title: str = "Confusion matrix (test split)") -> Figure:
    """A 10x10 confusion matrix (rows: true class, columns: predicted), counts written in the cells;
    the colour shows the row-normalised rate on a log scale so that rare mistakes stay visible."""
    from matplotlib.colors import LogNorm

    confusion = np.asarray(confusion)
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig = new_figure(6.2, 5.4)
    ax = fig.subplots()
    shown = np.where(rates > 0, rates, np.nan)
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1e-4, vmax=1))
    n = confusion.shape[0]
    for i in range(n):
        for j in range(n):
            if confusion[i, j]:
                ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7.5,
                        color="white" if rates[i, j] > 0.3 else ("black" if i == j else BAD))
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(confusion) / max(confusion.sum(), 1)
    ax.set_title(f"{title}: accuracy {accuracy:.2%}", fontsize=10)
    fig.colorbar(image, ax=ax, label="fraction of the true class (log)", shrink=0.85)
    return fig
