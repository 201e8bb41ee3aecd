"""The occlusion experiment: slide a square patch of one grey value over an image and watch the
probability of the true class.

Positions follow a 'valid' convolution: the patch's top-left pixel takes the offsets
0, stride, 2*stride, ... while the patch still fits, rows outer and columns inner (row-major from
the top-left), so an H x W image has (floor((H - patch) / stride) + 1) x (floor((W - patch) / stride) + 1)
positions; 28x28 with patch 14 and stride 7 gives the 3 x 3 = 9 of the reference report. When
stride does not divide (size - patch), the patch does not reach the last rows/columns (28, 14, 5:
offsets 0, 5, 10, so rows 24-27 are never covered). We keep the stride uniform rather than add a
shifted last position, so that every step is the same size and the count is the textbook formula;
`OcclusionResult.never_covered()` says how many pixels that leaves out, and the stride-1 map always
reaches every edge.

All occluded copies, and the clean image with them, go through the model in one batched call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OcclusionResult", "ReferenceTable", "REFERENCE_TABLES", "check_arguments", "offsets",
           "patch_positions", "occluded_images", "occlude", "sensitivity_map", "reference_table"]


@dataclass
class OcclusionResult:
    """What the model says about each occluded copy of one image.

    image: (H, W, C) float32 in [0, 1]; images: (P, H, W, C) the occluded copies, in position order;
    rows, cols: (P,) the patch's top-left pixel; probabilities: (P, 10) float64 softmax of each copy;
    clean_probabilities: (10,) of the image itself. `label` is the class whose probability is
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
    images: np.ndarray
    probabilities: np.ndarray
    clean_probabilities: np.ndarray
    index: int | None = None   # the test-set index of the image, when it came from there

    @property
    def count(self) -> int:
        return len(self.rows)

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


# ---------------------------------------------------------------------------- positions
def check_arguments(height: int, width: int, patch: int, stride: int, fill: float) -> None:
    """Raises ValueError, with a one-line reason, for a patch that does not fit an H x W image,
    a stride below 1 or a fill value outside [0, 1]."""
    if patch < 1:
        raise ValueError(f"--patch must be at least 1 pixel, got {patch}")
    if patch > min(height, width):
        raise ValueError(f"--patch {patch} is larger than the {height}x{width} image")
    if stride < 1:
        raise ValueError(f"--stride must be at least 1 pixel, got {stride}")
    if not 0.0 <= fill <= 1.0 or not np.isfinite(fill):
        raise ValueError(f"--fill must be a grey value in [0, 1], got {fill}")


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
    images = np.repeat(image[None], len(rows), axis=0)
    for p, (r, c) in enumerate(zip(rows, cols)):
        images[p, r:r + patch, c:c + patch, :] = fill
    return images, rows, cols


# ---------------------------------------------------------------------------- the experiment
def occlude(model, image: np.ndarray, label: int | None = None, *, patch: int = 14, stride: int = 7,
            fill: float = 0.5, index: int | None = None) -> OcclusionResult:
    """Occludes `image` (28, 28, 1) float32 in [0, 1] at every patch position and predicts each copy.

    label: the class to follow (0-9); None follows the clean image's predicted class. index: the
    image's test-set index, only recorded. The clean image and all P copies go through the model in
    one batch of P + 1.
    """
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    check_arguments(image.shape[0], image.shape[1], patch, stride, fill)
    if label is not None and not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a class 0-9, got {label}")
    from kerascnn.evaluation import predict_logits, softmax

    images, rows, cols = occluded_images(image, patch, stride, fill)
    batch = np.concatenate([image[None], images])
    probabilities = softmax(predict_logits(model, batch, batch_size=len(batch)))
    clean = probabilities[0]
    if label is None:
        label, source = int(clean.argmax()), "clean prediction"
    else:
        label, source = int(label), "true label"
    return OcclusionResult(image, label, source, int(patch), int(stride), float(fill), rows, cols,
                           images, probabilities[1:], clean, index)


def sensitivity_map(model, image: np.ndarray, label: int | None = None, *, patch: int = 14,
                    fill: float = 0.5, index: int | None = None) -> OcclusionResult:
    """`occlude` with stride 1: P(label) for every patch position (one batch; 225 copies for a
    14-pixel patch on 28x28). `result.prob_true_grid()` is the (29 - patch, 29 - patch) map, indexed
    by the patch's top-left pixel; its centre is at (row + (patch - 1) / 2, col + (patch - 1) / 2)."""
    return occlude(model, image, label, patch=patch, stride=1, fill=fill, index=index)


# ---------------------------------------------------------------------------- the reference report
@dataclass(frozen=True)
class ReferenceTable:
    """The reference report's occlusion table for one digit (a 14 patch, stride 7, 9 positions).

    Its model was a PyTorch CNN and its test image the first of that class in the original MNIST
    order, so the numbers are for comparison, not to be reproduced.
    """
    label: int
    prob_true: tuple[float, ...]
    pred: tuple[int, ...]
    patch: int = 14
    stride: int = 7


REFERENCE_TABLES: dict[int, ReferenceTable] = {
    7: ReferenceTable(7, (0.9999, 0.1734, 0.9956, 0.9859, 0.8804, 0.9999, 0.9982, 0.9853, 0.9847),
                      (7, 9, 7, 7, 7, 7, 7, 7, 7)),
    9: ReferenceTable(9, (0.9975, 0.0097, 0.7969, 0.4620, 0.0209, 0.9913, 0.9888, 0.4722, 1.0000),
                      (9, 4, 9, 7, 7, 9, 9, 9, 9)),
}


def reference_table(label: int | None, patch: int, stride: int) -> ReferenceTable | None:
    """The reference table comparable with an occlusion of a `label` with this patch and stride,
    or None when the report has none (it has the 7 and the 9, with patch 14 and stride 7)."""
    table = REFERENCE_TABLES.get(label) if label is not None else None
    if table is None or (table.patch, table.stride) != (patch, stride):
        return None
    return table
