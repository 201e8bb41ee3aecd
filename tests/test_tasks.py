"""kerascnn.data.tasks: a task's splits, its classes, choosing one image (Pick), and a user's picture in
its shape. Sources themselves (tfds, IDX, image folders) are tested in test_sources.py."""
import gzip

import numpy as np
import pytest

from kerascnn.errors import BadValue, UserError
from kerascnn.data import folders, sources
from kerascnn.data.tasks import Pick, Task, default_val_size, pick, split_validation


@pytest.fixture(autouse=True)
def fresh_cache():
    sources.load.cache_clear()
    yield
    sources.load.cache_clear()


def idx_folder(folder, test_labels, train_labels=(0, 1, 2, 3), shape=(28, 28)):
    rng = np.random.default_rng(0)
    for name, labels in (("train", train_labels), ("t10k", test_labels)):
        sources.write_idx(folder / f"{name}-images-idx3-ubyte", rng.integers(0, 256, (len(labels), *shape)))
        sources.write_idx(folder / f"{name}-labels-idx1-ubyte", np.asarray(labels))
    return folder


def test_a_damaged_gzipped_idx_file_is_a_user_error(tmp_path):
    # (the IDX round trip, truncated and foreign files: test_sources.test_idx_roundtrip_and_damaged_files)
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(b"\x00\x00")
    with pytest.raises(UserError):
        sources.read_idx(tmp_path / "bad.gz")


def test_splits_of_an_idx_folder(idx_dir):
    task = Task(data_dir=str(idx_dir))
    data = task.splits(val_size=100, seed=3)
    assert data.source.startswith("IDX files in ")
    assert data.x_train.shape == (500, 28, 28, 1) and data.x_val.shape == (100, 28, 28, 1)
    assert data.x_test.shape == (200, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() and data.x_train.max() == 1.0
    assert data.y_train.dtype == np.int64
    assert task.input_shape == (28, 28, 1) and task.num_classes == 10 and task.is_mnist
    assert task.class_names == tuple(str(d) for d in range(10)) and task.kind == "idx"
    assert task.name == idx_dir.name


def test_default_hold_out_is_a_tenth_capped_at_5000(idx_dir):
    assert [default_val_size(n) for n in (500, 600, 60_000, 5)] == [50, 60, 5000, 1]
    task = Task(data_dir=str(idx_dir))
    data = task.splits(subset=300, seed=0)  # no val_size: 30 of the 300 are held out
    assert len(data.x_val) == 30 and len(data.x_train) == 270
    assert len(task.splits().x_val) == 60
    with pytest.raises(BadValue, match="^subset: "):
        task.splits(subset=1)


def test_validation_split_is_seeded_and_disjoint():
    train, val = split_validation(1000, 100, seed=5)
    assert len(val) == 100 and len(train) == 900
    assert not set(train) & set(val)
    again_train, again_val = split_validation(1000, 100, seed=5)
    np.testing.assert_array_equal(val, again_val)
    assert not np.array_equal(val, split_validation(1000, 100, seed=6)[1])
    with pytest.raises(UserError, match="^val_size: ") as error:  # names the parameter, not a flag
        split_validation(100, 100, seed=0)
    assert isinstance(error.value, BadValue) and error.value.param == "val_size"


def test_pick_by_class_and_index(tmp_path):
    task = Task(data_dir=str(idx_folder(tmp_path, [3, 1, 4, 1, 5, 9, 2, 6])))
    assert pick(task, Pick(class_name="1")).index == 1
    assert pick(task, Pick(class_name=1)).index == 1
    chosen = pick(task, Pick(index=7))
    assert chosen.index == 7 and chosen.label == 6 and chosen.description == "test image 7 (6)"
    assert chosen.image.shape == (28, 28, 1) and chosen.image.dtype == np.float32
    with pytest.raises(BadValue, match="0-9") as error:
        pick(task, Pick(class_name="12"))
    assert error.value.param == "class_name"
    with pytest.raises(BadValue, match="no test image of class '0'"):
        pick(task, Pick(class_name="0"))
    for bad in (-1, 8):
        with pytest.raises(BadValue, match="index") as error:
            pick(task, Pick(index=bad))
        assert error.value.param == "index"
    with pytest.raises(UserError):
        pick(task, Pick())
    with pytest.raises(UserError):
        pick(task, Pick(class_name="1", index=2))
    first = [task.first_of_class(k) for k in (9, 1)]
    assert first == [5, 1]


def test_classes_by_name_of_an_image_folder(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    for split in ("train", "test"):
        folders.write_image_folder(tmp_path, images, [0, 1, 2, 0, 1, 2], ["Sneaker", "bag", "Coat"], split)
    task = Task(data_dir=str(tmp_path))
    assert task.class_names == ("Coat", "Sneaker", "bag")  # folders in sorted order
    assert task.class_index("Sneaker") == 1 and task.class_index("sneaker") == 1 and task.class_index("2") == 2
    assert task.input_shape == (8, 8, 3) and task.kind == "folder" and not task.is_mnist
    chosen = pick(task, Pick(class_name="bag"))
    assert task.label(chosen.label) == "bag" and chosen.description.endswith("(bag)")
    with pytest.raises(BadValue, match="'Hat' is not a class of .*Coat, Sneaker, bag"):
        task.class_index("Hat")


def test_own_picture_is_framed_like_mnist(tmp_path, idx_dir):
    from PIL import Image

    # a thick dark stroke in the top-left corner of a large white picture
    picture = np.full((300, 200), 255, np.uint8)
    picture[20:140, 30:60] = 0
    Image.fromarray(picture).save(tmp_path / "corner.png")
    image = Task(data_dir=str(idx_dir)).picture(tmp_path / "corner.png")[..., 0]
    rows = np.flatnonzero(image.max(axis=1) > 0.5)
    assert rows[-1] - rows[0] + 1 <= 20 and rows[-1] - rows[0] + 1 >= 18  # the longer side fills 20 pixels
    yy, xx = np.mgrid[0:28, 0:28]
    assert abs((yy * image).sum() / image.sum() - 13.5) <= 1.0   # centre of mass in the middle
    assert abs((xx * image).sum() / image.sum() - 13.5) <= 1.0
    assert image[0].max() == 0 and image[:, 0].max() == 0


def test_transparent_png_counts_as_white_paper(tmp_path, idx_dir):
    from PIL import Image

    rgba = np.zeros((50, 50, 4), np.uint8)          # fully transparent black...
    rgba[10:40, 22:28] = (0, 0, 0, 255)             # ...with an opaque black stroke
    Image.fromarray(rgba, "RGBA").save(tmp_path / "stroke.png")
    image = Task(data_dir=str(idx_dir)).picture(tmp_path / "stroke.png")
    assert image.max() > 0.9 and image[0, 0, 0] == 0.0  # a light stroke on dark, not all black
    assert (image > 0.5).mean() < 0.25


def test_missing_data_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        Task(data_dir=str(tmp_path / "nope")).test()
