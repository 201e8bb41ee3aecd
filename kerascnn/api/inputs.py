"""The user's objects in: a model (a `keras.Model` in memory, a `.keras` file, a run folder, or None
for the default), data (a tensorflow-datasets name, a folder, `(x, y)` arrays, `((x, y), (x_test,
y_test))` as `keras.datasets.*.load_data()` returns them, or a `tf.data.Dataset` of `(image, label)`
elements or batches) and the model's input domain (`input_range=`, `preprocess=`), made into the
Subject every experiment studies.

Pixels given as arrays are uint8 0-255 or floats in [0, 1]; floats in the model's own units are taken
when `input_range` says what those are. Anything else is refused with one `BadValue` naming the
argument, before any work.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerascnn.data.arrays import Arrays
from kerascnn.data.tasks import Pick, Task, check_dataset_name
from kerascnn.errors import BadValue, UserError


# ---------------------------------------------------------------------------- pixels
def as_pixels(images, param: str = "x", input_range=None) -> np.ndarray:
    """`images` (N, H, W[, C]) uint8 0-255, floats in [0, 1], or floats within `input_range` (the
    model's own units) -> float32 (N, H, W, C) in [0, 1]. BadValue(param) for anything else."""
    x = np.asarray(images)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise BadValue(param, f"must be an array of numbers, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]  # (N, H, W): one grey channel
    if x.ndim != 4 or 0 in x.shape:
        raise BadValue(param, f"must be images (N, H, W) or (N, H, W, C), got shape {np.shape(images)}")
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise BadValue(param, f"integer pixels must be 0-255, got {x.min()} to {x.max()}")
        return x.astype(np.float32) / np.float32(255.0)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise BadValue(param, "holds NaN or infinite pixels")
    low, high = float(x.min()), float(x.max())
    if low >= 0.0 and high <= 1.0:
        return x
    if input_range is not None:
        lo, hi = _range(input_range)
        if low >= lo and high <= hi:
            return ((x - lo) / (hi - lo)).astype(np.float32)
        raise BadValue(param, f"float pixels in [{low:g}, {high:g}] lie outside input_range ({lo:g}, {hi:g})")
    raise BadValue(param, f"float pixels in [{low:g}, {high:g}]: give uint8 0-255 or floats in [0, 1], or say "
                          f"the range they are in with input_range=(low, high)")


def _range(input_range) -> tuple[float, float]:
    from kerascnn.model.domain import parse_range

    if isinstance(input_range, str):
        return parse_range(input_range)
    try:
        lo, hi = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise BadValue("input_range", f"expected (low, high) such as (0, 255), got {input_range!r}") from None
    return parse_range(f"{lo},{hi}")


def as_labels(labels, count: int, param: str = "y") -> np.ndarray:
    """(N,) integer class numbers (or one-hot (N, K) rows) -> (N,) int64, checked against `count` images."""
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)  # one-hot rows, as keras.utils.to_categorical makes them
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or (y.size and np.all(np.mod(y, 1) == 0))):
        raise BadValue(param, f"must be (N,) integer class numbers, got shape {np.shape(labels)} of {y.dtype}")
    if len(y) != count:
        raise BadValue(param, f"has {len(y)} labels for {count} images: images and labels must have the same length")
    if y.size and y.min() < 0:
        raise BadValue(param, f"class numbers start at 0, got {y.min()}")
    return y.astype(np.int64)


# ---------------------------------------------------------------------------- data
@dataclass(frozen=True, eq=False)
class ArrayTask(Task):
    """A Task whose images are the user's arrays, held in memory (`source`). Test images are the
    `(x, y)` given (or the second pair of `((x, y), (x_test, y_test))`)."""
    source: Arrays | None = field(default=None, repr=False)

    def arrays(self) -> Arrays:
        return self.source

    @property
    def kind(self) -> str:
        return "arrays"

    @property
    def name(self) -> str:
        return self.dataset


def _arrays(train, test, class_names, num_classes, input_range) -> Arrays:
    (x_train, y_train), (x_test, y_test) = train, test
    x_train, x_test = as_pixels(x_train, "x", input_range), as_pixels(x_test, "x_test", input_range)
    y_train, y_test = as_labels(y_train, len(x_train), "y"), as_labels(y_test, len(x_test), "y_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise BadValue("x_test", f"images of shape {x_test.shape[1:]} beside training images of {x_train.shape[1:]}")
    top = int(max(y_train.max(initial=0), y_test.max(initial=0)))
    named = class_names is not None
    if class_names is not None:
        class_names = tuple(str(c) for c in class_names)
        if len(set(class_names)) != len(class_names):
            raise BadValue("class_names", "holds the same name twice")
        k = len(class_names)
        if num_classes is not None and k != num_classes:
            raise BadValue("class_names", f"names {k} class(es), but the model has {num_classes}")
    else:
        k = num_classes or top + 1
        class_names = tuple(str(i) for i in range(k))
    if k < 2:
        raise BadValue("class_names" if named else "y",
                       f"a classifier needs at least two classes, got {k}")
    if top >= k:
        raise BadValue("y", f"label {top} is outside the {k} classes (0-{k - 1})")
    for a in (x_train, y_train, x_test, y_test):
        a.setflags(write=False)
    return Arrays(x_train, y_train, x_test, y_test, class_names, "arrays", f"{len(x_test):,} images given as arrays")


def _from_dataset(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A tf.data.Dataset of (image, label) elements or batches (or {"image", "label"} dicts) -> arrays."""
    images, labels = [], []
    spec = dataset.element_spec
    if isinstance(spec, dict):
        pairs = ((e["image"], e["label"]) for e in dataset.as_numpy_iterator())
        rank = len(spec["image"].shape)
    elif isinstance(spec, tuple) and len(spec) == 2:
        pairs = dataset.as_numpy_iterator()
        rank = len(spec[0].shape)
    else:
        raise BadValue("data", f"a tf.data.Dataset must yield (image, label) pairs, got elements {spec}")
    for image, label in pairs:
        images.append(image if rank == 4 else image[None])
        labels.append(np.reshape(label, (-1,) if rank == 4 else (1,)))
    if not images:
        raise BadValue("data", "the tf.data.Dataset is empty")
    return np.concatenate(images), np.concatenate(labels)


def _is_pair(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2


def as_task(data=None, class_names=None, num_classes: int | None = None, input_range=None) -> Task:
    """The Task of `data`: None (MNIST), a tensorflow-datasets name, a folder, `(x, y)`, `((x, y),
    (x_test, y_test))` or a `tf.data.Dataset`. `num_classes` (the model's) fills in unnamed classes."""
    if data is None:
        return Task()
    if isinstance(data, Task):
        return data
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        if os.path.isdir(text) or os.sep in text or text.startswith("."):
            if not os.path.isdir(text):
                raise BadValue("data", f"{text} is not a folder")
            return Task(data_dir=text)
        return Task(check_dataset_name(text))
    if type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec"):
        data = _from_dataset(data)
    if _is_pair(data) and all(_is_pair(part) for part in data):
        train, test = data
    elif _is_pair(data):
        train = test = data
    else:
        raise BadValue("data", f"expected a dataset name, a folder, (x, y) arrays or a tf.data.Dataset, "
                               f"got {type(data).__name__}")
    return ArrayTask("arrays", None, _arrays(train, test, class_names, num_classes, input_range))


# ---------------------------------------------------------------------------- the model
def is_keras_model(model) -> bool:
    return hasattr(model, "layers") and hasattr(model, "outputs") and callable(model)


def domain_of(input_range=None, preprocess=None):
    """The InputDomain the user gave (None: read it off the model)."""
    if input_range is None and preprocess is None:
        return None
    from kerascnn.model.domain import InputDomain, check_preprocess

    if input_range is not None and preprocess is not None:
        raise BadValue("input_range", "give input_range or preprocess, not both")
    if preprocess is not None:
        return InputDomain.given(preprocess=check_preprocess(preprocess))
    lo, hi = _range(input_range)
    return InputDomain.given(input_range=f"{lo},{hi}")


def subject(model=None, data=None, *, input_range=None, preprocess=None, class_names=None):
    """The Subject of a call: `model` (a keras.Model, a path, a run folder, None for the default) on
    `data` (see `as_task`), read in the given input domain (None: as the model says)."""
    from kerascnn.cpu import choose_kernels

    choose_kernels()  # before TensorFlow starts: the CPU's fastest kernels
    quiet_retracing()
    from kerascnn.model.subject import Subject

    if isinstance(model, Subject):  # built already (the CLI builds it, with its notices): it holds data and domain
        if data is not None or input_range is not None or preprocess is not None or class_names is not None:
            raise BadValue("model", "a Subject carries its own data and input domain: give them to it, not here")
        return model
    domain = domain_of(input_range, preprocess)
    if type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec"):
        data = _from_dataset(data)  # once: a Dataset may not be iterable twice
    from kerascnn.model.subject import classifier_shape, load_keras, resolve_model_path

    if model is None:
        model = _default_for(data, class_names, input_range)
    if is_keras_model(model):
        keras_model, path = model, None
    elif model is None or isinstance(model, (str, os.PathLike)):
        path = resolve_model_path(model)
        keras_model = load_keras(path)
    else:
        raise BadValue("model", f"expected a keras.Model, a .keras file or a run folder, got {type(model).__name__}")
    _, k = classifier_shape(keras_model, str(path) if path else f"model {keras_model.name}")
    task = as_task(data, class_names, k, input_range if preprocess is None else None)
    return Subject(keras_model, task, path, domain=domain)


def quiet_retracing() -> None:
    """TensorFlow's "N out of the last N calls ... triggered tf.function retracing" warning, off as
    the commands have it: each attack function is traced once per model, and several models (or a
    notebook's several calls) make TensorFlow count those first traces as retracing. Set
    KERASCNN_VERBOSE_TF=1 to keep TensorFlow's logging as it is."""
    if not os.environ.get("KERASCNN_VERBOSE_TF"):
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")


def _default_for(data, class_names, input_range):
    """The model a command uses when none is given: the shipped cnn for MNIST-shaped data (None),
    else the task's trained run folder."""
    if data is None:
        return None
    if not isinstance(data, (str, os.PathLike, Task)):
        first = data[0] if _is_pair(data) and not all(_is_pair(p) for p in data) else data[1][0]
        if np.shape(first)[1:] in ((28, 28), (28, 28, 1)):
            return None
        raise BadValue("model", "no default model for these images: give model= (a keras.Model or a .keras file)")
    task = as_task(data, class_names, None, input_range)
    if (task.dataset == "mnist" and task.data_dir is None) or task.mnist_shaped:
        return None
    from kerascnn.training.config import default_out_dir

    folder = Path(default_out_dir(task, False))
    if not (folder / "model.keras").is_file():
        raise UserError(f"no model for {task.name}: pass model= (a keras.Model or a .keras file), or train one "
                        f"first with kerascnn.train (it writes {folder}/)")
    return folder


# ---------------------------------------------------------------------------- one image
def as_pick(index=None, class_name=None, digit=None, image=None, default: Pick | None = None) -> Pick | None:
    """The image to look at: exactly one of `index`, `class_name`, `digit` (MNIST) and `image` (an
    array (H, W[, C]) or a picture file); none given: `default`."""
    given = {k: v for k, v in (("index", index), ("class_name", class_name), ("digit", digit), ("image", image))
             if v is not None}
    if len(given) > 1:
        raise BadValue(next(iter(given)), f"choose one image: got {', '.join(given)}")
    if not given:
        return default
    if digit is not None:
        return Pick(class_name=str(digit))
    if index is not None:
        return Pick(index=index)
    if image is not None and not isinstance(image, (str, os.PathLike)):
        return Pick(image=np.asarray(image))
    return Pick(class_name=class_name, image=None if image is None else os.fspath(image))
