"""Occlusion, the method: slide a square patch of one grey value over an image and watch the
probability of its class.

Positions follow a 'valid' convolution: the patch's top-left pixel takes the offsets
0, stride, 2*stride, ... while the patch still fits, rows outer and columns inner (row-major from
the top-left), so an H x W image has (floor((H - patch) / stride) + 1) x (floor((W - patch) / stride) + 1)
positions; 28x28 with patch 14 and stride 7 gives the 3 x 3 = 9 of the reference report. When
stride does not divide (size - patch), the patch does not reach the last rows/columns (28, 14, 5:
offsets 0, 5, 10, so rows 24-27 are never covered). We keep the stride uniform rather than add a
shifted last position, so that every step is the same size and the count is the textbook formula;
`OcclusionResult.never_covered()` says how many pixels that leaves out.

The copies go through the model in batches as large as the model's size allows (model.batching);
they are built batch by batch and not kept (a stride-1 map of a 224-pixel image has 12,769 of
them: 7.7 GB), so `OcclusionResult.images` rebuilds them on demand.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.errors import BadValue
from kerascnn.model.batching import batch_size
from kerascnn.model.predict import predict_logits, softmax


@dataclass
class OcclusionResult:
    """What the model says about each occluded copy of one image.

    image: (H, W, C) float32 in [0, 1]; rows, cols: (P,) the patch's top-left pixel, in position
    order (`copy(p)` and `images` rebuild the occluded copies); probabilities: (P, K) float64 softmax of each copy;
    clean_probabilities: (K,) of the image itself. `label` is the class whose probability is
    followed: the true label, or the clean prediction when none was given (`label_source` says which).
    """
    image: np.ndarray
    label: int
    label_source: str          # "true label" or "clean prediction"
    patch: int
    stride: int
    fill: float
    rows: np.ndarray
    cols: np.ndarray
    probabilities: np.ndarray
    clean_probabilities: np.ndarray
    index: int | None = None   # the test-set index of the image, when it came from there
    class_names: tuple | None = None  # names of the classes, for figures (None: the numbers)

    @property
    def count(self) -> int:
        return len(self.rows)

    def copy(self, p: int) -> np.ndarray:
        """(H, W, C) the image with the patch at position p."""
        return fill_patches(self.image, self.rows[p:p + 1], self.cols[p:p + 1], self.patch, self.fill)[0]

    @property
    def images(self) -> np.ndarray:
        """(P, H, W, C) every occluded copy, in position order (built now: P images of memory)."""
        return fill_patches(self.image, self.rows, self.cols, self.patch, self.fill)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(number of row offsets, number of column offsets): positions form this grid, row-major."""
        return len(np.unique(self.rows)), len(np.unique(self.cols))

    @property
    def prob_true(self) -> np.ndarray:
        """(P,) probability of `label` for each occluded copy."""
        return self.probabilities[:, self.label]

    @property
    def pred(self) -> np.ndarray:
        """(P,) predicted class of each occluded copy."""
        return self.probabilities.argmax(axis=1)

    @property
    def prob_pred(self) -> np.ndarray:
        """(P,) probability of each copy's predicted class."""
        return self.probabilities.max(axis=1)

    @property
    def clean_pred(self) -> int:
        return int(self.clean_probabilities.argmax())

    @property
    def clean_prob_true(self) -> float:
        return float(self.clean_probabilities[self.label])

    def prob_true_grid(self) -> np.ndarray:
        """P(label) as the grid of positions: (n_rows, n_cols), [i, j] = i-th row offset, j-th col offset."""
        return self.prob_true.reshape(self.grid_shape)

    def never_covered(self) -> int:
        """How many pixels no patch position covers (0 unless the stride skips some)."""
        height, width = self.image.shape[:2]
        covered = np.zeros((height, width), bool)
        for r, c in zip(self.rows, self.cols):
            covered[r:r + self.patch, c:c + self.patch] = True
        return int((~covered).sum())

    def to_dict(self) -> dict:
        """The JSON form: index, label, patch, stride, fill, clean {pred, prob_true}, positions
        [{row, col, prob_true, pred, prob_pred}] (row, col: the patch's top-left pixel)."""
        return {
            "index": self.index,
            "label": self.label,
            "label_source": self.label_source,
            "patch": self.patch,
            "stride": self.stride,
            "fill": self.fill,
            "clean": {"pred": self.clean_pred, "prob_true": self.clean_prob_true},
            "positions": [{"row": int(r), "col": int(c), "prob_true": float(p), "pred": int(k),
                           "prob_pred": float(q)}
                          for r, c, p, k, q in zip(self.rows, self.cols, self.prob_true, self.pred,
                                                   self.prob_pred)],
        }


def check_arguments(height: int, width: int, patch: int, stride: int, fill: float) -> None:
    """Raises BadValue, with a one-line reason, for a patch that does not fit an H x W image,
    a stride below 1 or a fill value outside [0, 1]."""
    if patch < 1:
        raise BadValue("patch", f"must be at least 1 pixel, got {patch}")
    if patch > min(height, width):
        raise BadValue("patch", f"{patch} is larger than the {height}x{width} image")
    if stride < 1:
        raise BadValue("stride", f"must be at least 1 pixel, got {stride}")
    if not np.isfinite(fill) or not 0.0 <= fill <= 1.0:
        raise BadValue("fill", f"must be a grey value in [0, 1], got {fill}")


def offsets(size: int, patch: int, stride: int) -> np.ndarray:
    """Top-left offsets of the patch along one axis of length `size`: 0, stride, ... <= size - patch."""
    return np.arange(0, size - patch + 1, stride, dtype=np.int64)


def patch_positions(height: int, width: int, patch: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols), each (P,) int64: the patch's top-left pixels in row-major order."""
    check_arguments(height, width, patch, stride, 0.0)
    rows, cols = np.meshgrid(offsets(height, patch, stride), offsets(width, patch, stride), indexing="ij")
    return rows.ravel(), cols.ravel()


def occluded_images(image: np.ndarray, patch: int, stride: int, fill: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All occluded copies of `image` (H, W, C) float32 in [0, 1].

    Returns (images (P, H, W, C) float32, rows (P,), cols (P,)): copy p has the square
    [rows[p]:rows[p]+patch, cols[p]:cols[p]+patch] set to `fill` in every channel.
    """
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    height, width = image.shape[:2]
    check_arguments(height, width, patch, stride, fill)
    rows, cols = patch_positions(height, width, patch, stride)
    return fill_patches(image, rows, cols, patch, fill), rows, cols


def fill_patches(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch: int, fill: float) -> np.ndarray:
    """(len(rows), H, W, C) copies of `image`, copy p with the square at (rows[p], cols[p]) set to `fill`."""
    images = np.repeat(np.asarray(image, np.float32)[None], len(rows), axis=0)
    for p, (r, c) in enumerate(zip(rows, cols)):
        images[p, r:r + patch, c:c + patch, :] = fill
    return images


def predict_occluded(model, image: np.ndarray, rows: np.ndarray, cols: np.ndarray, patch: int, fill: float,
                     progress=None, batch: int | None = None) -> np.ndarray:
    """(P, K) logits of the copies of `image` occluded at (rows, cols), built and predicted `batch` at a
    time (None: as many as fit model.batching's budget). progress(done, total) after each batch."""
    batch = batch or batch_size(model)
    out = []
    for i in range(0, len(rows), batch):
        out.append(predict_logits(model, fill_patches(image, rows[i:i + batch], cols[i:i + batch], patch, fill),
                                  batch_size=batch))
        if progress is not None:
            progress(min(i + batch, len(rows)), len(rows))
    return np.concatenate(out) if out else np.zeros((0, int(model.output_shape[-1])), np.float32)


def occlude(model, image: np.ndarray, label: int | None = None, *, patch: int = 14, stride: int = 7,
            fill: float = 0.5, index: int | None = None, progress=None) -> OcclusionResult:
    """Occludes `image` (H, W, C) float32 in [0, 1] at every patch position and predicts each copy
    with the logits model `model`. label: the class to follow; None follows the clean image's
    prediction. index: the image's test-set index, only recorded. progress(done, total) per batch."""

    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    check_arguments(image.shape[0], image.shape[1], patch, stride, fill)
    classes = int(model.output_shape[-1])
    if label is not None and not 0 <= int(label) < classes:
        raise BadValue("label", f"must be a class 0-{classes - 1}, got {label}")
    rows, cols = patch_positions(image.shape[0], image.shape[1], patch, stride)
    probabilities = softmax(predict_occluded(model, image, rows, cols, patch, fill, progress))
    clean = softmax(predict_logits(model, image[None]))[0]
    if label is None:
        label, source = int(clean.argmax()), "clean prediction"
    else:
        label, source = int(label), "true label"
    return OcclusionResult(image, label, source, int(patch), int(stride), float(fill), rows, cols,
                           probabilities, clean, index)


#: The map's grid stays within this many positions a side: stride 1 up to 64 + patch - 1 pixels.
MAP_SIDE = 64


def map_stride_for(shape: tuple[int, ...], patch: int, side: int = MAP_SIDE) -> int:
    """The map's stride: 1 (every position) while that is at most `side` positions a side, else the
    smallest stride that keeps it so (a 224-pixel image with patch 112: stride 2, 57 x 57 positions)."""
    positions = min(shape[:2]) - patch + 1
    return max(1, -(-positions // side))
