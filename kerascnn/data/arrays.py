"""Arrays: a dataset as NumPy arrays (uint8 images, int64 labels, class names), whatever its source."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Arrays:
    """A task's raw images. Arrays are read-only: they are cached and shared."""
    x_train: np.ndarray      # (N, H, W, C) uint8
    y_train: np.ndarray      # (N,) int64
    x_test: np.ndarray       # (M, H, W, C) uint8
    y_test: np.ndarray       # (M,) int64
    class_names: tuple[str, ...]
    name: str                # the tfds name ("mnist", "cifar10", ...), "idx" or "folder"
    origin: str              # one line: where the images came from
    notices: tuple[str, ...] = ()  # one-line notices for the user (e.g. images resized)


def make_arrays(x_train, y_train, x_test, y_test, class_names, name, origin, notices=()) -> Arrays:
    """An Arrays of read-only uint8 images and int64 labels (every loader builds its result here)."""
    parts = [np.asarray(x_train, np.uint8), np.asarray(y_train, np.int64),
             np.asarray(x_test, np.uint8), np.asarray(y_test, np.int64)]
    for array in parts:
        array.setflags(write=False)  # cached: nobody may change them in place
    return Arrays(*parts, tuple(str(c) for c in class_names), name, origin, tuple(notices))
