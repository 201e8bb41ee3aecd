"""The raw images of an image classifier task, from one of three sources.

- tensorflow-datasets (`data_dir` None, or a tensorflow_datasets folder): any dataset with an `image`
  feature of fixed shape and a `label` ClassLabel (mnist, fashion_mnist, kmnist, cifar10, ...).
- a folder holding the four standard IDX files, gzipped or not (MNIST's format, any image size).
- a folder of images by class, the convention of `keras.utils.image_dataset_from_directory`:
  `DIR/train/<class>/*` and `DIR/test/<class>/*`, or `DIR/<class>/*`, from which 20% of each class
  is held out for testing by `seed`. Files are .png, .jpg, .jpeg, .bmp or .gif.

Images are uint8 (N, H, W, C), labels int64. "Test image i" is the i-th test image in the source's own
order: the order tensorflow-datasets stores (for MNIST not the IDX order), the IDX files' order, or
for an image folder the order `image_dataset_from_directory(shuffle=False)` yields: classes in sorted
folder-name order, then within a class its files sorted by folder path and then by name. Training
images follow the same rule.
"""
from __future__ import annotations

import difflib
import functools
import gzip
import os
from pathlib import Path

import numpy as np

from kerascnn.data import folders
from kerascnn.data.arrays import Arrays, make_arrays
from kerascnn.errors import BadValue, UserError, first_line

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: named when a dataset name is unknown
IMAGE_DATASETS = ("mnist", "fashion_mnist", "kmnist", "emnist", "cifar10", "cifar100", "svhn_cropped")
#: tfds fetches prepared copies and metadata from Google Cloud Storage before a dataset's own URLs;
#: if this host cannot be reached in 5 s the machine is taken to be offline
DOWNLOAD_HOST = ("storage.googleapis.com", 443)


@functools.lru_cache(maxsize=4)
def load(dataset: str = "mnist", data_dir: str | None = None, seed: int = 0) -> Arrays:
    """The task's images. `data_dir` None: the tensorflow-datasets `dataset` from TFDS_DATA_DIR (else
    tfds' own folder), downloaded when it is missing and the machine is online. `data_dir` a folder:
    its IDX files, else its images by class, else a tensorflow_datasets folder holding `dataset`.
    `seed` picks the test images of an image folder without train/ and test/. Cached per process."""
    if data_dir is None:
        return _load_tfds(dataset, None)
    folder = Path(data_dir).expanduser()
    if not str(data_dir).strip() or not folder.is_dir():
        raise UserError(f"data_dir {data_dir} is not a folder")
    folder = folder.resolve()
    if is_idx_folder(folder):
        return _load_idx(folder)

    layout = folders.layout(folder)
    if layout:
        return folders.load_split(folder) if layout == "split" else folders.load_classes(folder, seed)
    return _load_tfds(dataset, str(folder))


# ---------------------------------------------------------------------------- IDX files
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
    data = np.frombuffer(raw, np.uint8, offset=min(header, len(raw)))
    if len(raw) < header or data.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: header says {shape}, found {data.size} bytes")
    return data.reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file (gzipped when the name ends in .gz). For tests and tools."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def _load_idx(folder: Path) -> Arrays:
    x_train, y_train, x_test, y_test = (read_idx(_idx_path(folder, name)) for name in IDX_FILES.values())
    x_train, x_test = (x[..., None] if x.ndim == 3 else x for x in (x_train, x_test))  # MNIST's (N, H, W)
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or x.shape[1:] != x_train.shape[1:]:
            raise UserError(f"{folder}: {split} images {x.shape} and labels {y.shape} do not fit: they must "
                            f"be (N, H, W) or (N, H, W, C) and (N,), the same H, W, C in both splits")
    classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return make_arrays(x_train, y_train, x_test, y_test, [str(i) for i in range(classes)], "idx",
                   f"IDX files in {folder}")


# ---------------------------------------------------------------------------- tensorflow-datasets
def _can_reach(host: tuple[str, int], timeout: float = 5.0) -> bool:
    import socket

    try:
        socket.create_connection(host, timeout=timeout).close()
        return True
    except OSError:
        return False


def check_dataset_exists(dataset: str, data_dir: str | None = None) -> None:
    """BadValue("dataset") when `dataset` is not one tensorflow-datasets knows (before a model is
    looked for): the image datasets it names at once, any other through tfds' registry (no download)."""
    if data_dir is not None or dataset.split(":")[0].split("/")[0] in IMAGE_DATASETS:
        return
    import tensorflow_datasets as tfds

    try:
        tfds.builder_cls(dataset.split(":")[0].split("/")[0])
    except tfds.core.registered.DatasetNotFoundError:
        names = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(dataset.split("/")[0].split(":")[0], names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise BadValue("dataset", f"{dataset!r} is not a tensorflow-datasets image dataset{hint}; image "
                                  f"classification ones include {', '.join(IMAGE_DATASETS)}") from None


def _image_builder(dataset: str, data_dir: str | None):
    """The tfds builder of `dataset`, checked to be an image classification dataset of fixed shape."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(dataset, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        names = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(dataset.split("/")[0].split(":")[0], names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"dataset {dataset!r} is not a tensorflow-datasets dataset{hint}; image "
                        f"classification ones include {', '.join(IMAGE_DATASETS)}") from None
    except Exception as e:  # a bad config or version: tfds says which in its first line
        raise UserError(f"dataset {dataset!r}: {first_line(e)}") from None
    features = builder.info.features
    image = features["image"] if "image" in features else None
    label = features["label"] if "label" in features else None
    if not isinstance(image, tfds.features.Image) or not isinstance(label, tfds.features.ClassLabel):
        raise UserError(f"dataset {dataset!r} is not an image classification dataset: it needs an 'image' "
                        f"feature and a 'label' ClassLabel, and has {', '.join(features.keys())}")
    if None in image.shape or np.dtype(image.np_dtype) != np.uint8:
        raise UserError(f"dataset {dataset!r} has images of shape {image.shape} and type "
                        f"{np.dtype(image.np_dtype).name}; only fixed-size 8-bit ones load from tensorflow-"
                        f"datasets (an image folder by class passed as data_dir takes any size)")
    return builder


def _prepared(dataset: str, data_dir: str | None):
    """The tfds builder of `dataset`, prepared (downloaded where it is missing and the machine is online)."""
    builder = _image_builder(dataset, data_dir)
    if not builder.is_prepared():
        name = builder.info.full_name.rsplit("/", 1)[0]
        # tfds would retry a dead download for minutes (and leave half-made folders): ask first
        if not _can_reach(DOWNLOAD_HOST):
            where = (f"set TFDS_DATA_DIR to a folder holding {name}/<version>, or pass data_dir"
                     if data_dir is None else
                     f"data_dir holds neither the four IDX files, nor images by class, nor {name}/<version>")
            raise UserError(f"dataset {dataset!r} not found in {builder.data_dir_root} and it cannot be downloaded "
                            f"(no internet): {where}")
        builder.download_and_prepare()
    return builder


def _load_tfds(dataset: str, data_dir: str | None) -> Arrays:
    builder = _image_builder(dataset, data_dir)
    root = builder.data_dir_root
    name = builder.info.full_name.rsplit("/", 1)[0]
    try:
        builder = _prepared(dataset, data_dir)
        (x_train, y_train), (x_test, y_test) = _read_split(builder, "train"), _read_split(builder, "test")
    except UserError:
        raise
    except Exception as e:  # tfds raises many kinds (download, file, assertion) for "not there"
        raise UserError(f"cannot load dataset {dataset!r} from tensorflow-datasets in {root}: "
                        f"{first_line(e)}") from None
    return make_arrays(x_train, y_train, x_test, y_test, builder.info.features["label"].names, name,
                   f"tensorflow-datasets {name} {builder.version} in {root}")


def load_test_images(dataset: str, count: int, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` test images (uint8, N x H x W x C) and labels of a tensorflow-datasets image
    dataset, without reading its training split (test-only sets such as cifar10_corrupted have none)."""
    try:
        builder = _prepared(dataset, data_dir)
        images, labels = _read_split(builder, f"test[:{int(count)}]")
        return images[:count], labels[:count]  # (tfds' mock data ignores the slice)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot load dataset {dataset!r} from tensorflow-datasets: {first_line(e)}") from None


def _read_split(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    # not batch_size=-1: that batches by the split's recorded size, which tfds' mock data lacks
    ds = builder.as_dataset(split=split, shuffle_files=False)
    ds = ds.map(lambda example: (example["image"], example["label"])).batch(10_000)
    batches = list(ds.as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])
