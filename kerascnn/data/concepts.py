"""Concept examples for TCAV (kerascnn.attributions.concepts): a user's folder of pictures of a concept,
or, on MNIST, four demonstration concepts found in the training images by a measurable rule, so that no
picture has to be drawn or downloaded.

    horizontal-bar    a row of the upper half holding a run of at least 14 inked pixels (the top of a 7, of a 5)
    closed-loop       a background region of at least 6 pixels that ink encloses (flood fill from the
                      border: scipy.ndimage.binary_fill_holes)
    diagonal-stroke   a run of at least 11 inked pixels along a 45-degree diagonal, with no horizontal
                      run of 12 and no vertical run of 14 (a slanted stroke, not a bar or an upright 1)
    thick-stroke      mean stroke width (ink area / skeleton length, skimage.morphology.skeletonize)
                      in the top tenth of the digits searched (the first 10,000)

Ink is a pixel above half the maximum. Each concept takes its digits round-robin over the classes that
have some, in a seeded random order, and keeps only the part that shows it (`isolate`: the bar, the loop,
the diagonal; the thick digit whole), so that a concept is a shape shared by several digits, not a class,
and not the digits (random digits have loops and bars too: a CAV of whole digits would barely beat them).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kerascnn.data.folders import IMAGE_SUFFIXES
from kerascnn.errors import BadValue

#: The fewest pictures a concept may have: fewer would make its CAV a guess.
MIN_IMAGES = 10
DEMO = ("horizontal-bar", "closed-loop", "diagonal-stroke", "thick-stroke")
DEMO_RULES = {
    "horizontal-bar": "a run of >= 14 inked pixels in a row of the upper half",
    "closed-loop": "a background region of >= 6 pixels enclosed by ink",
    "diagonal-stroke": "a 45-degree run of >= 11 inked pixels, no horizontal run of 12, no vertical run of 14",
    "thick-stroke": "mean stroke width (ink area / skeleton length) in the top 10% of the training set",
}


def parse_concept(spec: str) -> tuple[str, str]:
    """'NAME=DIR' -> (name, dir); BadValue("concepts") when it is not of that form."""
    name, sep, folder = str(spec).partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise BadValue("concepts", f"{spec!r} is not NAME=DIR (a name, '=', a folder of pictures of the concept)")
    return name.strip(), folder.strip()


def concept_files(folder: str | os.PathLike, name: str = "") -> list[Path]:
    """The picture files of a concept folder (walked, sorted); BadValue("concepts") when it is missing
    or holds fewer than MIN_IMAGES."""
    path = Path(folder)
    if not path.is_dir():
        raise BadValue("concepts", f"{name or 'concept'}: {folder} is not a folder")
    files = [Path(root) / f for root, _, names in sorted(os.walk(path), key=lambda w: w[0])
             for f in sorted(names) if f.lower().endswith(IMAGE_SUFFIXES)]
    if len(files) < MIN_IMAGES:
        raise BadValue("concepts", f"{name or 'concept'}: {folder} holds {len(files)} picture"
                                   f"{'s' * (len(files) != 1)}; a concept needs at least {MIN_IMAGES}")
    return files


def read_concept(files: list, shape: tuple, light_background: bool = False) -> np.ndarray:
    """A concept's pictures in the task's shape (N, H, W, C) float32 in [0, 1], each resized whole (not
    framed like an MNIST digit: where a concept sits in the picture is part of it). light_background=True
    (MNIST-like tasks: light ink on black) inverts a picture whose border is light."""
    from kerascnn.data.pictures import load_picture

    out = []
    for f in files:
        x = load_picture(f, shape, digits=False)
        border = np.concatenate([x[0].ravel(), x[-1].ravel(), x[:, 0].ravel(), x[:, -1].ravel()])
        out.append(1.0 - x if light_background and np.median(border) > 0.5 else x)
    return np.stack(out).astype(np.float32)


def check_images(images, name: str) -> np.ndarray:
    """A concept given as an array: (N, H, W, C) float32 in [0, 1] with N >= MIN_IMAGES."""
    x = np.asarray(images, np.float32)
    if x.ndim != 4 or len(x) < MIN_IMAGES:
        raise BadValue("concepts", f"{name}: needs at least {MIN_IMAGES} images as an (N, H, W, C) array, "
                                   f"got shape {x.shape}")
    return x


# ---------------------------------------------------------------------------- MNIST's demonstration concepts
def _runs(mask: np.ndarray) -> np.ndarray:
    """(N, R, L) bool -> (N,) the longest run of True along the last axis, over every row R."""
    n, rows, length = mask.shape
    run = np.zeros((n, rows), np.int32)
    best = np.zeros((n, rows), np.int32)
    for i in range(length):
        run = np.where(mask[:, :, i], run + 1, 0)
        best = np.maximum(best, run)
    return best.max(axis=1)


def _diagonals(mask: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, 2H-1 + 2H-1, H): every diagonal and anti-diagonal, zero-padded, as rows."""
    n, h, w = mask.shape
    rows = []
    for grid in (mask, mask[:, :, ::-1]):
        for k in range(-h + 1, w):
            d = np.diagonal(grid, offset=k, axis1=1, axis2=2)
            rows.append(np.pad(d, ((0, 0), (0, h - d.shape[1]))))
    return np.stack(rows, axis=1)


def demo_measures(images: np.ndarray) -> dict:
    """(N, H, W[, 1]) MNIST digits (uint8 or [0, 1]) -> {concept: (N,) bool} by the rules of the module."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    x = np.asarray(images, np.float32)
    x = x.reshape(x.shape[:3]) / (255.0 if x.max() > 1 else 1.0)
    ink = x > 0.5
    horizontal, vertical = _runs(ink), _runs(ink.transpose(0, 2, 1))
    top = _runs(ink[:, :ink.shape[1] // 2])
    holes = np.array([(ndimage.binary_fill_holes(m) & ~m).sum() for m in ink])
    width = np.array([m.sum() / max(1, skeletonize(m).sum()) for m in ink])
    return {"horizontal-bar": top >= 14,
            "closed-loop": holes >= 6,
            "diagonal-stroke": (_runs(_diagonals(ink)) >= 11) & (horizontal < 12) & (vertical < 14),
            "thick-stroke": width >= np.quantile(width, 0.9)}


def pick_round_robin(chosen: np.ndarray, labels: np.ndarray, count: int, rng) -> np.ndarray:
    """Up to `count` indices where `chosen`, taken in turn from each class that has some (each class's in a
    random order), so that no class dominates a concept."""
    queues = [list(rng.permutation(np.flatnonzero(chosen & (labels == c)))) for c in np.unique(labels)]
    queues = [q for q in queues if q]
    out = []
    while queues and len(out) < count:
        for q in list(queues):
            if len(out) < count:
                out.append(q.pop())
            if not q:
                queues.remove(q)
    return np.array(sorted(out), np.int64)


def _longest(line: np.ndarray) -> tuple[int, int]:
    """(length, start) of the longest run of True in a 1-D bool array."""
    best, start, run = 0, 0, 0
    for i, v in enumerate(line):
        run = run + 1 if v else 0
        if run > best:
            best, start = run, i - run + 1
    return best, start


def _band(shape, pixels, reach: int) -> np.ndarray:
    """A bool mask of `pixels` ((row, col) pairs) grown by `reach` pixels (a square neighbourhood)."""
    from scipy import ndimage

    mask = np.zeros(shape, bool)
    mask[tuple(np.array(pixels).T)] = True
    return ndimage.binary_dilation(mask, np.ones((3, 3), bool), iterations=reach)


def isolate(image: np.ndarray, concept: str) -> np.ndarray:
    """The part of one digit (H, W) in [0, 1] that shows `concept`, the rest set to 0: the longest
    horizontal run in the upper half and 2 pixels around it; the largest enclosed hole and the ink within
    3 pixels of it; the longest 45-degree run and 1 pixel around it; a thick stroke is the whole digit."""
    from scipy import ndimage

    ink = image > 0.5
    h, w = ink.shape
    if concept == "horizontal-bar":
        row = max(range(h // 2), key=lambda r: _longest(ink[r])[0])
        length, col = _longest(ink[row])
        keep = _band(ink.shape, [(row, c) for c in range(col, col + length)], 2)
    elif concept == "closed-loop":
        labelled, count = ndimage.label(ndimage.binary_fill_holes(ink) & ~ink)
        largest = 1 + int(np.argmax(ndimage.sum(np.ones_like(labelled), labelled, range(1, count + 1))))
        keep = ndimage.binary_dilation(labelled == largest, np.ones((3, 3), bool), iterations=3)
    elif concept == "diagonal-stroke":
        best = (0, [])
        for flip in (False, True):
            grid = ink[:, ::-1] if flip else ink
            for k in range(-h + 1, w):
                length, j = _longest(np.diagonal(grid, offset=k))
                if length > best[0]:
                    cells = [(i + max(0, -k), i + max(0, k)) for i in range(j, j + length)]
                    best = (length, [(r, w - 1 - c) if flip else (r, c) for r, c in cells])
        keep = _band(ink.shape, best[1], 1)
    else:
        keep = np.ones_like(ink)
    return np.where(keep, image, 0.0).astype(np.float32)


def demo_concepts(images: np.ndarray, labels: np.ndarray, count: int = 50, seed: int = 0,
                  pool: int = 10000) -> dict:
    """{concept: ((k, H, W, 1) float32 images showing it, (k,) the indices of the digits they were cut from)}
    for DEMO: up to `count` training digits of several classes each, chosen among the first `pool` (the
    rules cost about a second on 10,000), each cut down to the concept's part (`isolate`), so that the
    CAV learns the shape and not the digits that have it. A concept no digit shows gets (k = 0)."""
    pool = min(pool, len(images))
    measures = demo_measures(images[:pool])
    rng = np.random.default_rng(seed)
    out = {}
    for name in DEMO:
        index = pick_round_robin(measures[name], np.asarray(labels[:pool]), count, rng)
        x = np.asarray(images[index], np.float32).reshape(len(index), *images.shape[1:3])
        x = x / (255.0 if np.asarray(images).dtype == np.uint8 else 1.0)
        cut = np.stack([isolate(v, name) for v in x]) if len(x) else np.zeros((0, *x.shape[1:]), np.float32)
        out[name] = (cut[..., None], index)
    return out
