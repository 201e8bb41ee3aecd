"""Images by class in folders, the convention of `keras.utils.image_dataset_from_directory`:
`DIR/train/<class>/*` and `DIR/test/<class>/*`, or `DIR/<class>/*` with 20% of each class held out
for testing by seed (kerascnn.data.sources reads a task's images through here; its docstring gives the order).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kerascnn.data import pictures
from kerascnn.data.arrays import Arrays, make_arrays
from kerascnn.errors import BadValue, UserError
from kerascnn.outputs import store

#: the suffixes image_dataset_from_directory reads (compared in lower case)
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
#: an image folder without train/ and test/ holds out this share of each class for testing
TEST_SHARE = 0.2


# Read by hand with PIL rather than image_dataset_from_directory: each file's greyscale/RGB mode decides
# the channels, images keep their size unless they differ from the first, 16-bit files keep their
# range, and the arrays come out whole in the documented sorted order.
def _class_folders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _files_of(folder: Path) -> list[Path]:
    """A class folder's images, walked like image_dataset_from_directory: folders sorted, names sorted."""
    return [Path(root) / name for root, _, files in sorted(os.walk(folder), key=lambda walk: walk[0])
            for name in sorted(files) if name.lower().endswith(IMAGE_SUFFIXES)]


def _holds_classes(folder: Path, every: bool = True) -> bool:
    """True when every (or any) subfolder of `folder` holds an image file directly. Only that level is
    looked at, so that a big folder which is no image folder is not walked to its bottom."""
    classes = _class_folders(folder) if folder.is_dir() else []
    return bool(classes) and (all if every else any)(
        any(e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES) for e in os.scandir(folder / name))
        for name in classes)


def layout(folder: Path) -> str | None:
    """"split" (train/ and test/ of class folders), "classes" (class folders), or None."""
    train, test = folder / "train", folder / "test"
    if train.is_dir() and test.is_dir() and (_holds_classes(train, False) or _holds_classes(test, False)):
        return "split"
    for present, absent in ((train, test), (test, train)):
        if _holds_classes(present) and not absent.is_dir():
            raise UserError(f"data_dir {folder} has {present.name}/ but no {absent.name}/: give both, or put "
                            f"the class folders directly in data_dir")
    return "classes" if _holds_classes(folder) else None


def _index(folder: Path) -> tuple[list[str], list[Path], np.ndarray]:
    classes = _class_folders(folder)
    if len(classes) < 2:
        raise BadValue("data_dir", f"{folder} holds {len(classes)} class folder{'s' if len(classes) != 1 else ''} "
                                   f"({', '.join(classes) or 'none'}): a classifier needs at least 2 classes")
    files = [_files_of(folder / name) for name in classes]
    labels = [label for label, f in enumerate(files) for _ in f]
    return classes, [path for f in files for path in f], np.array(labels, np.int64)


def load_split(folder: Path) -> Arrays:

    classes, train_files, y_train = _index(folder / "train")
    test_classes, test_files, y_test = _index(folder / "test")
    if classes != test_classes:
        only = [", ".join(sorted(set(a) - set(b))) or "-"
                for a, b in ((classes, test_classes), (test_classes, classes))]
        raise UserError(f"data_dir {folder}: train/ and test/ must hold the same class folders; only in "
                        f"train/: {only[0]}; only in test/: {only[1]}")
    if not train_files or not test_files:
        raise UserError(f"data_dir {folder}: {'train/' if not train_files else 'test/'} holds no images")
    images, notices = pictures.read_pictures(train_files + test_files)  # one size and mode for both
    return make_arrays(images[:len(train_files)], y_train, images[len(train_files):], y_test, classes, "folder",
                   f"image folder {folder} (train/ and test/)", notices)


def load_classes(folder: Path, seed: int) -> Arrays:
    if seed < 0:
        raise UserError(f"seed must be 0 or more, got {seed}")

    classes, files, labels = _index(folder)
    test = np.zeros(len(files), bool)
    for label in range(len(classes)):
        members = np.flatnonzero(labels == label)
        n_test = max(1, round(TEST_SHARE * len(members))) if len(members) >= 2 else 0
        chosen = np.random.default_rng([seed, label]).permutation(members)[:n_test]
        test[chosen] = True
    if not test.any():
        raise UserError(f"data_dir {folder}: no class has two images, so none can be held out for testing")
    images, notices = pictures.read_pictures(files)
    return make_arrays(images[~test], labels[~test], images[test], labels[test], classes, "folder",
                   f"image folder {folder} (no train/ and test/: {TEST_SHARE:.0%} of each class held out "
                   f"for testing by seed {seed})", notices)


def write_image_folder(root: str | os.PathLike, images: np.ndarray, labels, class_names,
                       split: str | None = "train") -> Path:
    """Writes images (N, H, W, C) uint8, C 1 or 3, as PNGs `root/<split>/<class>/<i:05d>.png` (no
    <split> level when split is None); every class gets a folder, even an empty one. Returns the folder
    of class folders."""
    from PIL import Image


    images = np.asarray(images, np.uint8)
    if images.ndim != 4 or images.shape[3] not in (1, 3):
        raise ValueError(f"images must be (N, H, W, 1) or (N, H, W, 3), got {images.shape}")
    if split not in ("train", "test", None):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    base = Path(root) / split if split else Path(root)
    for name in class_names:
        store.ensure_dir(base / str(name))
    for i, (image, label) in enumerate(zip(images, np.asarray(labels))):
        with store.atomic_path(base / str(class_names[int(label)]) / f"{i:05d}.png") as tmp:
            Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(tmp, format="PNG")
    return base
