"""MNIST as arrays and tf.data pipelines.

Two sources: tensorflow-datasets (`tfds.load("mnist")`, honouring `TFDS_DATA_DIR`, downloading when
the machine can) and a folder holding the four standard IDX files, gzipped or not. Pixels are float32
in [0, 1], shape (28, 28, 1); labels int64. No mean/std normalisation anywhere.

Image order: "test image i" means the i-th image of the test split *as the source stores it*.
tensorflow-datasets writes MNIST in its own shuffled order, so index 0 is a different image there
than in the original IDX files.
"""
from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerascnn import UserError

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
NOT_FOUND = ("MNIST not found: set TFDS_DATA_DIR to a tensorflow_datasets folder holding mnist, "
             "or pass --data-dir (a tensorflow_datasets folder or a folder of the four IDX files)")


@dataclass
class Mnist:
    """MNIST split three ways. Images (N, 28, 28, 1) float32 in [0, 1]; labels (N,) int64."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # "tfds" or "idx:<folder>"


# ---------------------------------------------------------------------------- raw sources
def _idx_path(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def is_idx_folder(folder: str | os.PathLike) -> bool:
    """True when `folder` holds all four IDX files (gzipped or not)."""
    folder = Path(folder)
    return all(_idx_path(folder, name) for name in IDX_FILES.values())


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (gzipped or not) into a uint8 array of the shape its header gives."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read IDX file {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: header says {shape}, found {data.size} bytes")
    return data.reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file (gzipped when the name ends in .gz). For tests and tools."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def _load_idx(folder: Path) -> tuple[np.ndarray, ...]:
    parts = {key: read_idx(_idx_path(folder, name)) for key, name in IDX_FILES.items()}
    for split in ("train", "test"):
        if len(parts[f"{split}_images"]) != len(parts[f"{split}_labels"]):
            raise UserError(f"{folder}: {split} images and labels differ in count")
    return parts["train_images"], parts["train_labels"], parts["test_images"], parts["test_labels"]


MNIST_HOST = ("storage.googleapis.com", 443)  # where tfds' mnist builder downloads from


def _can_reach(host: tuple[str, int], timeout: float = 5.0) -> bool:
    import socket

    try:
        socket.create_connection(host, timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_tfds(data_dir: str | None) -> tuple[np.ndarray, ...]:
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder("mnist", data_dir=data_dir)
        if not builder.is_prepared():
            # tfds would retry a dead download for minutes (and leave half-made folders): ask first
            if not _can_reach(MNIST_HOST):
                raise UserError(f"{NOT_FOUND} (not in {builder.data_dir}, and {MNIST_HOST[0]} cannot be "
                                f"reached to download it)")
            builder.download_and_prepare()
        splits = builder.as_dataset(split=["train", "test"], batch_size=-1, as_supervised=True)
        (x_train, y_train), (x_test, y_test) = tfds.as_numpy(splits)
    except UserError:
        raise
    except Exception as e:  # tfds raises many kinds (download, file, assertion) for "not there"
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise UserError(f"{NOT_FOUND} ({reason})") from None
    return x_train, y_train, x_test, y_test


@functools.lru_cache(maxsize=4)
def load_arrays(data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Raw MNIST: (x_train, y_train, x_test, y_test, source), images uint8 (N, 28, 28, 1).

    `data_dir` may be a folder of IDX files, a tensorflow_datasets folder, or None (tfds decides:
    `TFDS_DATA_DIR`, else its default folder, downloading if it can). Cached per process.
    """
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise UserError(f"--data-dir {data_dir} is not a folder")
        if is_idx_folder(folder):
            parts = _load_idx(folder)
            source = f"idx:{folder.resolve()}"
        else:
            parts = _load_tfds(str(folder.resolve()))
            source = "tfds"
    else:
        parts = _load_tfds(None)
        source = "tfds"
    x_train, y_train, x_test, y_test = parts
    x_train = x_train.reshape(-1, 28, 28, 1)
    x_test = x_test.reshape(-1, 28, 28, 1)
    for array in (x_train, y_train, x_test, y_test):
        array.setflags(write=False)  # cached: nobody may change them in place
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), source


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return images.astype(np.float32) / np.float32(255.0)


def split_validation(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of a seeded random hold-out of `val_size` out of `n` images."""
    if not 0 <= val_size < n:
        raise UserError(f"--val-size must be between 0 and {n - 1}, got {val_size}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def load_mnist(data_dir: str | None = None, val_size: int = 5000, seed: int = 0,
               subset: int | None = None) -> Mnist:
    """MNIST with a seeded validation set held out of the training split.

    `subset` keeps only the first `subset` training images (before the hold-out), for quick trials.
    The test split is returned whole and is never used to pick anything.
    """
    x_train, y_train, x_test, y_test, source = load_arrays(data_dir)
    if subset is not None:
        if subset < 2:
            raise UserError(f"--subset must be at least 2, got {subset}")
        x_train, y_train = x_train[:subset], y_train[:subset]
    train_idx, val_idx = split_validation(len(x_train), val_size, seed)
    return Mnist(to_float(x_train[train_idx]), y_train[train_idx], to_float(x_train[val_idx]),
                 y_train[val_idx], to_float(x_test), y_test, source)


def load_test(data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The test split: images (N, 28, 28, 1) float32 in [0, 1], labels (N,) int64."""
    _, _, x_test, y_test, _ = load_arrays(data_dir)
    return to_float(x_test), y_test


# ---------------------------------------------------------------------------- picking images
def pick(labels: np.ndarray, digit: int | None = None, index: int | None = None) -> int:
    """Index of the first test image of class `digit`, or `index` itself after a range check."""
    if (digit is None) == (index is None):
        raise UserError("choose one image: --digit D or --index I")
    if digit is not None:
        if not 0 <= digit <= 9:
            raise UserError(f"--digit must be 0-9, got {digit}")
        found = np.flatnonzero(labels == digit)
        if found.size == 0:
            raise UserError(f"no test image of digit {digit}")
        return int(found[0])
    if not 0 <= index < len(labels):
        raise UserError(f"--index must be between 0 and {len(labels) - 1}, got {index}")
    return int(index)


def first_of_each_class(labels: np.ndarray, classes) -> np.ndarray:
    """Indices of the first test image of each class in `classes`, in that order."""
    return np.array([pick(labels, digit=int(c)) for c in classes], dtype=np.int64)


def load_image_file(path: str | os.PathLike) -> np.ndarray:
    """A user's picture as an MNIST-like image: (28, 28, 1) float32 in [0, 1], light digit on dark.

    Any size or mode PIL reads. Transparent pixels count as white paper. The picture is made
    greyscale, scaled to [0, 1] and inverted when its background (the median of its border) is
    light. Then it is framed the way MNIST's digits were: the ink's bounding box is scaled to fit
    20x20 and placed in the 28x28 image with its centre of mass at the centre. A picture with no
    ink at all is simply resized.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(paper, rgba)
            grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"cannot read image {path}: {reason}") from None
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 0.5:
        grey = 1.0 - grey
    grey = np.clip(grey - np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])), 0, 1)
    return _frame_like_mnist(grey).reshape(28, 28, 1)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    pil = Image.fromarray(np.asarray(image, np.float32), mode="F")
    return np.asarray(pil.resize((width, height), Image.LANCZOS), np.float32)


def _frame_like_mnist(ink: np.ndarray) -> np.ndarray:
    """Light-on-dark (H, W) in [0, 1] -> (28, 28): ink box fitted to 20x20, centre of mass centred."""
    peak = float(ink.max())
    if peak <= 0:
        return np.clip(_resize(ink, 28, 28), 0, 1)
    ink = ink / peak
    rows = np.flatnonzero(ink.max(axis=1) > 0.2)
    cols = np.flatnonzero(ink.max(axis=0) > 0.2)
    box = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = box.shape
    scale = 20.0 / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    digit = np.clip(_resize(box, new_w, new_h), 0, 1)
    canvas = np.zeros((28, 28), np.float32)
    top, left = (28 - new_h) // 2, (28 - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = digit
    mass = canvas.sum()
    yy, xx = np.mgrid[0:28, 0:28]
    shift_y = int(round(13.5 - (yy * canvas).sum() / mass))
    shift_x = int(round(13.5 - (xx * canvas).sum() / mass))
    # shift the centre of mass to the middle, as far as the 20x20 box stays inside the image
    shift_y = int(np.clip(shift_y, -top, 28 - top - new_h))
    shift_x = int(np.clip(shift_x, -left, 28 - left - new_w))
    return np.roll(canvas, (shift_y, shift_x), axis=(0, 1))


# ---------------------------------------------------------------------------- tf.data
def batches(images: np.ndarray, labels: np.ndarray, batch_size: int):
    """An unshuffled tf.data pipeline of (images, labels) batches, for evaluation."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def shuffled_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, epoch_var):
    """Training batches, reshuffled each epoch by the stateless seed (seed, epoch_var).

    The permutation depends only on the seed and the epoch number read from `epoch_var` (a tf.Variable
    set before each epoch), so a run resumed at epoch k sees exactly the order an unbroken run would.
    The data stay in memory as tensors; every iteration gathers one batch and prefetches the next.
    """
    import tensorflow as tf

    n = len(images)
    x = tf.constant(images)
    y = tf.constant(labels)
    num_batches = -(-n // batch_size)

    def permutation(_):
        return tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch_var.read_value()]))

    return (tf.data.Dataset.from_tensors(0).map(permutation).unbatch()
            .batch(batch_size)
            .map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx)), num_parallel_calls=tf.data.AUTOTUNE)
            .apply(tf.data.experimental.assert_cardinality(num_batches))
            .prefetch(tf.data.AUTOTUNE))
