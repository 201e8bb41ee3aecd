"""Task: what an image classifier is asked to do, and where its images come from.

A Task names a dataset (a tensorflow-datasets name, default `mnist`) and optionally a folder
(`data_dir`: a tensorflow_datasets folder, a folder of IDX files, or a folder of images by class;
see `kerascnn.data.sources`). From it come the input shape (H, W, C), the class names, the test split
("test image i" is the i-th in the source's own order) and the seeded train/validation split used
for training. Pixels are float32 in [0, 1] everywhere; no mean/std normalisation.

Nothing is read until asked: `Task("cifar10")` is free; `task.input_shape` loads (and caches) the data.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerascnn.data import pictures, sources
from kerascnn.errors import BadValue

DEFAULT_DATASET = "mnist"
#: Named in --help; any tensorflow-datasets image-classification dataset works.
KNOWN_DATASETS = ("mnist", "fashion_mnist", "kmnist", "cifar10")
#: The default validation hold-out is this many training images at most (MNIST: 5,000 of 60,000)...
VAL_SIZE_CAP = 5000
#: ...and at most this fraction of them (a --subset of 500 holds out 50).
VAL_FRACTION = 0.1


@dataclass
class Splits:
    """A task's images split three ways. Images (N, H, W, C) float32 in [0, 1]; labels (N,) int64."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str          # where the images came from, one line


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]; images already float (in [0, 1], given as arrays) stay as they are."""
    if np.issubdtype(images.dtype, np.floating):
        return images.astype(np.float32, copy=False)
    return images.astype(np.float32) / np.float32(255.0)


def default_val_size(train_images: int) -> int:
    """The hold-out when none is asked for: 10% of the training images, at most 5,000."""
    return max(1, min(VAL_SIZE_CAP, int(train_images * VAL_FRACTION)))


def split_validation(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of a seeded random hold-out of `val_size` out of `n` images."""
    if not 0 <= val_size < n:
        raise BadValue("val_size", f"must be between 0 and {n - 1} for {n} training images, got {val_size}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


@dataclass(frozen=True)
class Task:
    """A dataset to classify: `dataset` (tfds name) and `data_dir` (None: TFDS_DATA_DIR / tfds' own)."""
    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None

    # ------------------------------------------------------------------ what it is
    def arrays(self):
        """The raw source (kerascnn.data.arrays.Arrays: uint8 images, int64 labels, class names), cached."""

        return sources.load(self.dataset, self.data_dir)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.arrays().x_test.shape[1:])

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.arrays().class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def kind(self) -> str:
        """"tfds", "idx" or "folder"."""
        name = self.arrays().name
        return name if name in ("idx", "folder") else "tfds"

    @property
    def name(self) -> str:
        """A short name for titles and folders: the tfds name, or the data folder's name."""
        if self.data_dir is not None and self.kind != "tfds":
            return Path(self.data_dir).expanduser().resolve().name or "data"
        return self.dataset

    @property
    def slug(self) -> str:
        """`name` made safe for a folder name."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("._") or "data"

    @property
    def is_mnist(self) -> bool:
        """MNIST itself (tfds or its IDX files): digits, framed the MNIST way when read from a picture."""
        arrays = self.arrays()
        return (arrays.name == "mnist" or (arrays.name == "idx" and self.input_shape == (28, 28, 1))) \
            and self.num_classes == 10

    @property
    def mnist_shaped(self) -> bool:
        """28 x 28 grey images in 10 classes: what the shipped MNIST models take, whatever the digits."""
        return self.input_shape == (28, 28, 1) and self.num_classes == 10

    def describe(self) -> str:
        return self.arrays().origin

    # ------------------------------------------------------------------ classes
    def label(self, k: int) -> str:
        """The name of class `k` (MNIST: "7")."""
        return self.class_names[int(k)]

    def class_index(self, spec: str | int, param: str = "class_name") -> int:
        """A class given by name ("Sneaker") or number ("7", 7) -> its index. Names win over numbers
        (MNIST's class "7" is number 7 either way)."""
        names = self.class_names
        text = str(spec).strip()
        if text in names:
            return names.index(text)
        lowered = [n.lower() for n in names]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        if re.fullmatch(r"\d+", text) and int(text) < len(names):
            return int(text)
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise BadValue(param, f"{spec!r} is not a class of {self.name}: give a name ({shown}) "
                              f"or a number 0-{len(names) - 1}")

    def check_class(self, k: int, param: str = "target") -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < self.num_classes:
            raise BadValue(param, f"must be a class 0-{self.num_classes - 1} of {self.name}, got {k}")
        return int(k)

    # ------------------------------------------------------------------ images
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """The test split: images (N, H, W, C) float32 in [0, 1], labels (N,) int64."""
        arrays = self.arrays()
        return to_float(arrays.x_test), arrays.y_test

    def classes_in_test(self) -> list[int]:
        """The classes that have at least one test image (a folder's test split may lack some)."""
        return sorted({int(c) for c in np.unique(self.arrays().y_test)})

    def first_of_class(self, k: int) -> int:
        """Index of the first test image of class k."""
        found = np.flatnonzero(self.arrays().y_test == k)
        if found.size == 0:
            raise BadValue("class_name", f"no test image of class {self.label(k)!r} in {self.name}")
        return int(found[0])

    def check_index(self, index: int) -> int:
        count = len(self.arrays().y_test)
        if not 0 <= index < count:
            raise BadValue("index", f"must be between 0 and {count - 1} (test images of {self.name}), got {index}")
        return int(index)

    def check_count(self, count: int, param: str = "count") -> int:
        """A number of test images to take from the start: at most the test split's size."""
        available = len(self.arrays().y_test)
        if not 1 <= count <= available:
            raise BadValue(param, f"must be between 1 and {available} (test images of {self.name}), got {count}")
        return int(count)

    def splits(self, val_size: int | None = None, seed: int = 0, subset: int | None = None) -> Splits:
        """Train / validation / test. `subset` keeps only the first N training images (before the
        hold-out); `val_size` None holds out `default_val_size` of them. The hold-out is seeded; the
        test split is returned whole and is never used to choose anything."""
        arrays = self.arrays()
        x_train, y_train = arrays.x_train, arrays.y_train
        if subset is not None:
            if subset < 2:
                raise BadValue("subset", f"must be at least 2, got {subset}")
            x_train, y_train = x_train[:subset], y_train[:subset]
        if val_size is None:
            val_size = default_val_size(len(x_train))
        train_idx, val_idx = split_validation(len(x_train), val_size, seed)
        return Splits(to_float(x_train[train_idx]), y_train[train_idx], to_float(x_train[val_idx]),
                      y_train[val_idx], to_float(arrays.x_test), arrays.y_test, arrays.origin)

    def picture(self, path: str | os.PathLike) -> np.ndarray:
        """A user's picture in this task's shape (H, W, C) float32 in [0, 1] (MNIST: framed like its digits)."""

        return pictures.load_picture(path, self.input_shape, digits=self.is_mnist)


def check_dataset_name(name: str) -> str:
    """A cheap check of a tensorflow-datasets name (before any loading): lowercase, digits, _ and /."""
    if not re.fullmatch(r"[a-z0-9_]+(/[a-z0-9_.]+)?(:[0-9.]+)?", name or ""):
        raise BadValue("dataset", f"{name!r} is not a tensorflow-datasets name (e.g. {', '.join(KNOWN_DATASETS)})")
    return name


# ---------------------------------------------------------------------------- choosing one image
@dataclass(frozen=True)
class Pick:
    """Which image an experiment looks at: exactly one of `class_name` (the first test image of that
    class, by name or number), `index` (test image i) or `image` (a picture file, or an array (H, W, C)
    in [0, 1] from the Python API)."""
    class_name: str | int | None = None
    index: int | None = None
    image: "str | np.ndarray | None" = None

    def check(self) -> "Pick":
        given = sum(v is not None for v in (self.class_name, self.index, self.image))
        if given != 1:
            raise BadValue("pick", "choose exactly one image: a class, a test index or an image file")
        if self.index is not None and self.index < 0:
            raise BadValue("index", f"must be 0 or more, got {self.index}")
        return self


@dataclass
class Picked:
    """The chosen image (H, W, C) float32 in [0, 1], its true class (None for a picture file), its
    test index (None for a picture) and a description for titles ("test image 4 (a 7)")."""
    image: np.ndarray
    label: int | None
    index: int | None
    description: str


def pick(task: Task, choice: Pick) -> Picked:
    choice.check()
    if isinstance(choice.image, np.ndarray):  # an image given as an array (the Python API): (H, W, C) in [0, 1]
        image = choice.image[..., None] if choice.image.ndim == 2 else choice.image
        if image.shape != task.input_shape:
            raise BadValue("image", f"has shape {choice.image.shape}; {task.name}'s images are {task.input_shape}")
        return Picked(image.astype(np.float32), None, None, "the given image")
    if choice.image is not None:
        return Picked(task.picture(choice.image), None, None, os.path.basename(str(choice.image)))
    if choice.index is not None:
        i = task.check_index(choice.index)
    else:
        i = task.first_of_class(task.class_index(choice.class_name))
    images, labels = task.test()
    return Picked(images[i], int(labels[i]), i, f"test image {i} ({task.label(labels[i])})")
