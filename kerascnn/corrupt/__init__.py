"""Common corruptions, generated locally and deterministically: two suites of 15 at severities 1-5.

    mnist-c   MNIST-C (Mu & Gilmer 2019): kerascnn.corrupt.mnist_c
    common    ImageNet-C / CIFAR-10-C (Hendrycks & Dietterich 2019): kerascnn.corrupt.common

`corrupt(images, name, severity, seed)` maps (N, H, W, C) images in [0, 1] to corrupted ones in
[0, 1]. Image i's random draws are seeded by (seed, corruption, severity, i) alone, so an image is
corrupted the same way whatever the batch or the count around it, and severity 0 is the identity.
"""
from __future__ import annotations

import importlib
import zlib

import numpy as np

from kerascnn.errors import BadValue

SUITES = {"mnist-c": "mnist_c", "common": "common"}
SEVERITIES = (1, 2, 3, 4, 5)
#: Each suite's corruptions in its paper's order, known without importing the suite (option parsing
#: stays cheap); each module's CORRUPTIONS holds the functions under the same names.
NAMES = {"mnist-c": ("shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate",
                     "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges"),
         "common": ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
                    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
                    "jpeg_compression")}


def suite(name: str) -> dict:
    """{corruption name: function(image, severity, rng)} of suite `name`, in its paper's order."""
    names(name)  # checks the name
    return importlib.import_module(f"kerascnn.corrupt.{SUITES[name]}").CORRUPTIONS


def names(suite_name: str) -> tuple[str, ...]:
    """Suite `suite_name`'s corruption names (NAMES), the name checked."""
    if suite_name not in SUITES:
        raise BadValue("suite", f"unknown suite {suite_name!r}: choose from {', '.join(SUITES)}")
    return NAMES[suite_name]


def check_names(suite_name: str, chosen) -> tuple[str, ...]:
    """The corruptions `chosen` (None: all of the suite), each checked to be in it."""
    every = names(suite_name)
    if chosen is None:
        return every
    for name in chosen:
        if name not in every:
            raise BadValue("corruption", f"unknown corruption {name!r} in suite {suite_name}: choose from "
                                         f"{', '.join(every)}")
    return tuple(chosen)


def check_severities(severities) -> tuple[int, ...]:
    for s in severities:
        if s not in SEVERITIES:
            raise BadValue("severity", f"must be 1-5, got {s}")
    return tuple(severities)


def rng_for(seed: int, name: str, severity: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode()), int(severity), int(index)])


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0, suite_name: str = "mnist-c",
            first_index: int = 0) -> np.ndarray:
    """(N, H, W, C) images in [0, 1] -> the same under corruption `name` of `suite_name` at `severity`
    (0: unchanged), float32 in [0, 1]. `first_index`: the index of images[0] in its set (for the seeds)."""
    images = np.asarray(images, np.float32)
    if severity == 0:
        return images.copy()
    fn = suite(suite_name)[check_names(suite_name, [name])[0]]
    check_severities([severity])
    out = np.empty_like(images)
    for i, image in enumerate(images):
        found = fn(image.astype(np.float64), severity, rng_for(seed, name, severity, first_index + i))
        out[i] = np.clip(found, 0, 1)
    return out
