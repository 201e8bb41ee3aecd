"""A small store of results for one model that does not change (Subject.memo): the newest up
to a bound in bytes of arrays, keyed by what the caller computed from (`digest` of its images)."""
from __future__ import annotations

import dataclasses

import numpy as np


class Memo:
    """Results kept for one model that does not change (a Subject's logits model: Subject.memo),
    the newest of them up to `limit` bytes of arrays: explain's maps by (images, targets, settings,
    layer), occlusion's logits (every class) by image, and experiments.minimal.shared's results by
    options. A report explains its first test images with the same settings in two sections
    (faithfulness, then the explanation metrics), and the random-logit metric explains them again for
    other classes, where occlusion's forward passes are the same: at 224 px these were 70 of the 150 s
    the two sections took (2026-12-06). A hit returns what the first
    call computed, so the numbers are those of computing again (every method is deterministic under
    its seed). The bound is in bytes, not entries: the MNIST report's 100 images are 100 occlusion
    entries of 25 KB, and a 1,000-class model at 224 px makes 3 MB ones."""

    def __init__(self, limit: int = 256 << 20):
        self.limit, self.kept, self.sizes = limit, {}, {}

    def get(self, key, compute):
        if key in self.kept:
            self.kept[key] = self.kept.pop(key)  # the newest again
            return self.kept[key]
        value = compute()
        size = nbytes(value)
        if size <= self.limit:
            self.kept[key], self.sizes[key] = value, size
            while sum(self.sizes.values()) > self.limit:
                oldest = next(iter(self.kept))
                del self.kept[oldest], self.sizes[oldest]
        return value


def nbytes(value) -> int:
    """Bytes of the arrays in `value` (an array, a dataclass, or tuples, lists and dicts of them)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # attributions' Maps, say
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value)
    return 0


def digest(array: np.ndarray) -> tuple:
    import hashlib

    array = np.ascontiguousarray(array)
    return array.shape, str(array.dtype), hashlib.sha1(array.tobytes()).hexdigest()
