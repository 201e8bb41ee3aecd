"""Test helpers shared by several test files (markers and synthetic data)."""
import os

import numpy as np
import pytest

from kerascnn import DEFAULT_MODEL

TFDS_DIR = os.environ.get("TFDS_DATA_DIR", "")
HAVE_MNIST = bool(TFDS_DIR) and os.path.isdir(os.path.join(TFDS_DIR, "mnist"))
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="real MNIST not at hand (set TFDS_DATA_DIR)")
needs_pretrained = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no pretrained model in saved_models/")


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 28, 28) whose class c is a bright 6x6 block at a class-specific place, plus
    noise: easy to learn in a few steps, so tests can check that training learns something."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28))
    for i, c in enumerate(labels):
        row, col = 3 + 8 * (c // 4), 3 + 8 * (c % 4)
        images[i, row:row + 6, col:col + 6] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)
