"""The published corrupted sets from tensorflow-datasets, where it has them: MNIST-C as
`mnist_corrupted/<name>` (one severity each, MNIST-C's: mnist_c.PUBLISHED) and CIFAR-10-C as
`cifar10_corrupted/<name>_<severity>`."""
from __future__ import annotations

import numpy as np

from kerascnn.data import sources
from kerascnn.errors import UserError


def dataset_name(suite_name: str, name: str, severity: int) -> str:
    if suite_name == "mnist-c":
        return f"mnist_corrupted/{name}"
    return f"cifar10_corrupted/{name}_{int(severity)}"


def severity_of(suite_name: str, name: str, severity: int) -> int:
    """The severity the published set holds when `severity` is asked for (MNIST-C has one per corruption)."""
    if suite_name == "mnist-c":
        from kerascnn.corrupt.mnist_c import PUBLISHED

        return PUBLISHED[name]
    return int(severity)


def load(suite_name: str, name: str, severity: int, count: int, data_dir: str | None = None):
    """(images float32 in [0, 1], labels int64) of the first `count` published test images."""
    images, labels = sources.load_test_images(dataset_name(suite_name, name, severity), count, data_dir)
    if len(images) == 0:
        raise UserError(f"{dataset_name(suite_name, name, severity)} has no test images")
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)
