import gzip

import numpy as np
import pytest
import tensorflow as tf

from kerascnn import UserError, data


def test_idx_roundtrip_gzipped_and_plain(tmp_path):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        data.write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(data.read_idx(tmp_path / name), array)


def test_truncated_or_foreign_idx_is_refused(tmp_path):
    data.write_idx(tmp_path / "x", np.zeros((3, 28, 28), np.uint8))
    raw = (tmp_path / "x").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-10])
    with pytest.raises(UserError, match="truncated"):
        data.read_idx(tmp_path / "short")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(UserError, match="not an unsigned-byte IDX"):
        data.read_idx(tmp_path / "text")
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(b"\x00\x00")
    with pytest.raises(UserError):
        data.read_idx(tmp_path / "bad.gz")


def test_load_mnist_from_idx_folder(idx_dir):
    mnist = data.load_mnist(str(idx_dir), val_size=100, seed=3)
    assert mnist.source.startswith("idx:")
    assert mnist.x_train.shape == (500, 28, 28, 1) and mnist.x_val.shape == (100, 28, 28, 1)
    assert mnist.x_test.shape == (200, 28, 28, 1)
    assert mnist.x_train.dtype == np.float32 and 0.0 <= mnist.x_train.min() and mnist.x_train.max() == 1.0
    assert mnist.y_train.dtype == np.int64


def test_validation_split_is_seeded_and_disjoint():
    train, val = data.split_validation(1000, 100, seed=5)
    assert len(val) == 100 and len(train) == 900
    assert not set(train) & set(val)
    again_train, again_val = data.split_validation(1000, 100, seed=5)
    np.testing.assert_array_equal(val, again_val)
    assert not np.array_equal(val, data.split_validation(1000, 100, seed=6)[1])
    with pytest.raises(UserError, match="--val-size"):
        data.split_validation(100, 100, seed=0)


def test_pick_by_digit_and_index():
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    assert data.pick(labels, digit=1) == 1
    assert data.pick(labels, index=7) == 7
    with pytest.raises(UserError, match="0-9"):
        data.pick(labels, digit=12)
    with pytest.raises(UserError, match="no test image of digit 0"):
        data.pick(labels, digit=0)
    for bad in (-1, 8):
        with pytest.raises(UserError, match="--index"):
            data.pick(labels, index=bad)
    with pytest.raises(UserError):
        data.pick(labels)
    np.testing.assert_array_equal(data.first_of_each_class(labels, [9, 1]), [5, 1])


def test_missing_data_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        data.load_arrays(str(tmp_path / "nope"))


def test_shuffled_batches_depend_only_on_seed_and_epoch():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    labels = np.arange(10, dtype=np.int64)

    def epoch_order(seed, epoch):
        var = tf.Variable(epoch, dtype=tf.int64)
        ds = data.shuffled_batches(images, labels, 4, seed, var)
        assert int(ds.cardinality()) == 3
        return np.concatenate([y.numpy() for _, y in ds])

    first = epoch_order(0, 0)
    assert sorted(first) == list(range(10))  # every image once per epoch
    np.testing.assert_array_equal(first, epoch_order(0, 0))
    assert not np.array_equal(first, epoch_order(0, 1))
    assert not np.array_equal(first, epoch_order(1, 0))
    # the epoch is read each time the pipeline is iterated: a resumed run sees the same order
    var = tf.Variable(0, dtype=tf.int64)
    ds = data.shuffled_batches(images, labels, 4, 0, var)
    var.assign(1)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in ds]), epoch_order(0, 1))
    # images and labels stay paired
    for x, y in data.shuffled_batches(images, labels, 4, 0, var):
        np.testing.assert_array_equal(x.numpy().reshape(-1), y.numpy())


def test_own_picture_is_framed_like_mnist(tmp_path):
    from PIL import Image

    # a thick dark stroke in the top-left corner of a large white picture
    picture = np.full((300, 200), 255, np.uint8)
    picture[20:140, 30:60] = 0
    Image.fromarray(picture).save(tmp_path / "corner.png")
    image = data.load_image_file(tmp_path / "corner.png")[..., 0]
    rows = np.flatnonzero(image.max(axis=1) > 0.5)
    assert rows[-1] - rows[0] + 1 <= 20 and rows[-1] - rows[0] + 1 >= 18  # the longer side fills 20 pixels
    yy, xx = np.mgrid[0:28, 0:28]
    assert abs((yy * image).sum() / image.sum() - 13.5) <= 1.0   # centre of mass in the middle
    assert abs((xx * image).sum() / image.sum() - 13.5) <= 1.0
    assert image[0].max() == 0 and image[:, 0].max() == 0


def test_transparent_png_counts_as_white_paper(tmp_path):
    from PIL import Image

    rgba = np.zeros((50, 50, 4), np.uint8)          # fully transparent black...
    rgba[10:40, 22:28] = (0, 0, 0, 255)             # ...with an opaque black stroke
    Image.fromarray(rgba, "RGBA").save(tmp_path / "stroke.png")
    image = data.load_image_file(tmp_path / "stroke.png")
    assert image.max() > 0.9 and image[0, 0, 0] == 0.0  # a light stroke on dark, not all black
    assert (image > 0.5).mean() < 0.25
