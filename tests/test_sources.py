"""kerascnn.data.sources: tensorflow-datasets (mocked, and real MNIST when at hand), IDX folders and image
folders by class. No downloads: tfds is mocked or the reachability check is forced."""
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerascnn.errors import UserError
from kerascnn.data import folders, sources

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")
# cifar10's builder learns its label names while preparing the data; unprepared (mocked) it has "0".."9"
CIFAR10 = tuple(str(i) for i in range(10))
CLASSES = ["zebra", "apple", "mango", "kiwi", "banana"]  # written unsorted: the order must come from the sort


@pytest.fixture(autouse=True)
def fresh_cache():
    sources.load.cache_clear()
    yield
    sources.load.cache_clear()


def random_images(n, h, w, c, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def read_png(path):
    array = np.asarray(Image.open(path))
    return array[:, :, None] if array.ndim == 2 else array


def sorted_files(split_dir):
    """Independent of the module: (class folder, file name) sorted, as keras' image_dataset_from_directory."""
    return sorted(Path(split_dir).glob("*/*.png"), key=lambda p: (p.parent.name, p.name))


# ---------------------------------------------------------------------------- tensorflow-datasets
@pytest.mark.parametrize("name, shape, names", [("fashion_mnist", (28, 28, 1), FASHION),
                                                ("cifar10", (32, 32, 3), CIFAR10)])
def test_tfds_datasets_other_than_mnist(monkeypatch, name, shape, names):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(sources, "_can_reach", lambda *a, **k: True)  # the mock's prepare is a no-op
    with tfds.testing.mock_data(num_examples=20, policy=tfds.testing.MockPolicy.USE_CODE):
        arrays = sources.load(name)
    assert arrays.x_train.shape == (20, *shape) and arrays.x_test.shape == (20, *shape)
    assert arrays.x_train.dtype == np.uint8 and arrays.y_test.dtype == np.int64
    assert arrays.class_names == names and arrays.name == name
    assert arrays.origin.startswith(f"tensorflow-datasets {name} ")
    assert 0 <= arrays.y_train.min() and arrays.y_train.max() < len(names)
    assert not arrays.x_train.flags.writeable and not arrays.y_test.flags.writeable


def test_missing_tfds_dataset_offline_is_one_line_without_a_download(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(sources, "_can_reach", lambda *a, **k: False)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(UserError) as error:
        sources.load("cifar10", str(tmp_path))
    message = str(error.value)
    assert "'cifar10' not found in" in message and str(tmp_path) in message and "\n" not in message
    assert "data_dir" in message and "--" not in message


def test_unknown_and_non_image_tfds_names_are_one_line():
    with pytest.raises(UserError, match=r"'cifar11'.*did you mean.*cifar10") as error:
        sources.load("cifar11")
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="'imdb_reviews' is not an image classification dataset"):
        sources.load("imdb_reviews")
    with pytest.raises(UserError, match="fixed-size"):
        sources.load("oxford_flowers102")  # images of any size: refused before any download


@pytest.mark.skipif(not os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", "/nonexistent"), "mnist")),
                    reason="real MNIST not at hand (set TFDS_DATA_DIR)")
def test_real_mnist_through_tfds_data_dir():
    arrays = sources.load("mnist")
    assert arrays.x_train.shape == (60000, 28, 28, 1) and arrays.x_test.shape == (10000, 28, 28, 1)
    assert arrays.class_names == tuple(str(d) for d in range(10))
    assert np.bincount(arrays.y_test).tolist()[:2] == [980, 1135]  # MNIST's published test counts
    assert "mnist 3.0.1" in arrays.origin and arrays.name == "mnist"
    assert sources.load("mnist") is arrays  # cached


# ---------------------------------------------------------------------------- IDX files
def test_idx_roundtrip_and_damaged_files(tmp_path):
    array = np.arange(2 * 5 * 7, dtype=np.uint8).reshape(2, 5, 7)
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        sources.write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(sources.read_idx(tmp_path / name), array)
    (tmp_path / "short").write_bytes((tmp_path / "a-idx3-ubyte").read_bytes()[:-3])
    with pytest.raises(UserError, match="truncated"):
        sources.read_idx(tmp_path / "short")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(UserError, match="not an unsigned-byte IDX"):
        sources.read_idx(tmp_path / "text")


def test_idx_folder_takes_its_shape_from_the_header(tmp_path):
    x, xt = random_images(12, 32, 32, 1, 0)[..., 0], random_images(4, 32, 32, 1, 1)[..., 0]
    sources.write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    sources.write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(12) % 4)
    sources.write_idx(tmp_path / "t10k-images-idx3-ubyte", xt)
    sources.write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 5, 1, 2]))
    assert sources.is_idx_folder(tmp_path)
    arrays = sources.load(data_dir=str(tmp_path))
    assert arrays.x_train.shape == (12, 32, 32, 1) and arrays.x_test.shape == (4, 32, 32, 1)
    np.testing.assert_array_equal(arrays.x_test[..., 0], xt)
    assert arrays.class_names == ("0", "1", "2", "3", "4", "5") and arrays.name == "idx"
    assert arrays.origin == f"IDX files in {tmp_path.resolve()}"


# ---------------------------------------------------------------------------- image folders
def write_split_folder(root, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = {"train": rng.permutation(np.arange(15) % 5), "test": rng.permutation(np.arange(10) % 5)}
    for split, y in labels.items():
        folders.write_image_folder(root, random_images(len(y), 32, 32, channels, seed + len(y)), y, CLASSES,
                                   split)
    return root


def test_image_folder_with_train_and_test(tmp_path):
    arrays = sources.load(data_dir=str(write_split_folder(tmp_path)))
    assert arrays.class_names == tuple(sorted(CLASSES)) and arrays.name == "folder"
    assert arrays.x_train.shape == (15, 32, 32, 3) and arrays.x_test.shape == (10, 32, 32, 3)
    assert arrays.notices == () and "train/ and test/" in arrays.origin
    for split, x, y in (("train", arrays.x_train, arrays.y_train), ("test", arrays.x_test, arrays.y_test)):
        files = sorted_files(tmp_path / split)
        np.testing.assert_array_equal(x, np.stack([read_png(f) for f in files]))  # PNG is lossless
        np.testing.assert_array_equal(y, [sorted(CLASSES).index(f.parent.name) for f in files])


def test_test_order_is_image_dataset_from_directory_order(tmp_path):
    import keras

    arrays = sources.load(data_dir=str(write_split_folder(tmp_path)))
    ds = keras.utils.image_dataset_from_directory(tmp_path / "test", shuffle=False, image_size=(32, 32),
                                                  batch_size=None, verbose=False)
    assert list(ds.class_names) == list(arrays.class_names)
    expected = np.stack([read_png(f) for f in ds.file_paths])
    np.testing.assert_array_equal(arrays.x_test, expected)


def test_greyscale_folder_has_one_channel_and_a_colour_image_makes_three(tmp_path):
    arrays = sources.load(data_dir=str(write_split_folder(tmp_path, channels=1)))
    assert arrays.x_train.shape == (15, 32, 32, 1)
    written = np.stack([read_png(f) for f in sorted_files(tmp_path / "test")])
    np.testing.assert_array_equal(arrays.x_test, written)
    colour = random_images(1, 32, 32, 3, 9)[0]
    Image.fromarray(colour).save(tmp_path / "test" / "kiwi" / "zz.png")
    sources.load.cache_clear()
    mixed = sources.load(data_dir=str(tmp_path))
    assert mixed.x_train.shape == (15, 32, 32, 3)
    grey = read_png(sorted_files(tmp_path / "train")[0])
    np.testing.assert_array_equal(mixed.x_train[0], np.repeat(grey, 3, axis=2))
    kiwi_last = int(np.flatnonzero(mixed.y_test == sorted(CLASSES).index("kiwi"))[-1])
    np.testing.assert_array_equal(mixed.x_test[kiwi_last], colour)


def test_sixteen_bit_images_keep_their_range(tmp_path):
    for i, level in enumerate((3000, 60000)):
        for split in ("train", "test"):
            for name in ("a", "b"):  # two classes: a classifier needs them
                (tmp_path / split / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((8, 8), level, np.uint16)).save(tmp_path / split / name / f"{i}.png")
    arrays = sources.load(data_dir=str(tmp_path))
    assert arrays.x_train.shape == (4, 8, 8, 1)
    assert arrays.x_train[:, 0, 0, 0].tolist() == [round(3000 / 65535 * 255), round(60000 / 65535 * 255)] * 2


def test_folder_without_split_is_split_per_class_by_seed(tmp_path):
    counts = {"zebra": 5, "apple": 10, "mango": 2, "kiwi": 1, "banana": 6}
    images = random_images(sum(counts.values()), 16, 16, 3, 4)
    labels = np.repeat(np.arange(len(counts)), list(counts.values()))
    folders.write_image_folder(tmp_path, images, labels, list(counts), split=None)
    arrays = sources.load(data_dir=str(tmp_path), seed=7)
    expected_test = {"zebra": 1, "apple": 2, "mango": 1, "kiwi": 0, "banana": 1}  # 20%, at least 1 of 2+
    names = arrays.class_names
    assert names == tuple(sorted(counts)) and "seed 7" in arrays.origin
    assert {names[c]: int((arrays.y_test == c).sum()) for c in range(5)} == expected_test
    assert {names[c]: int((arrays.y_train == c).sum()) for c in range(5)} == {
        k: counts[k] - expected_test[k] for k in counts}
    every = sorted(x.tobytes() for x in np.concatenate([arrays.x_train, arrays.x_test]))
    assert every == sorted(x.tobytes() for x in images)  # a partition of what was written
    sources.load.cache_clear()
    again = sources.load(data_dir=str(tmp_path), seed=7)
    np.testing.assert_array_equal(again.x_test, arrays.x_test)
    others = [sources.load(data_dir=str(tmp_path), seed=s).x_test for s in range(8)]
    assert any(not np.array_equal(o, arrays.x_test) for o in others)


def test_a_differently_sized_image_is_resized_with_one_notice(tmp_path):
    write_split_folder(tmp_path)
    yy, xx = np.mgrid[0:20, 0:44]
    smooth = np.stack([xx * 5, yy * 10, 128 + 0 * xx], axis=2).astype(np.uint8)  # no ringing to clip
    odd = np.stack([smooth, 255 - smooth])
    for i, image in enumerate(odd):
        Image.fromarray(image).save(tmp_path / "train" / "zebra" / f"zz{i}.png")
    arrays = sources.load(data_dir=str(tmp_path))
    assert arrays.x_train.shape == (17, 32, 32, 3)
    assert len(arrays.notices) == 1 and arrays.notices[0].startswith("resized 2 images to 32x32")
    expected = np.asarray(Image.fromarray(odd[1]).resize((32, 32), Image.LANCZOS), np.int16)
    assert np.abs(arrays.x_train[16].astype(np.int16) - expected).max() <= 2  # the last zebra file


def test_bad_image_folders_are_refused_in_one_line(tmp_path):
    write_split_folder(tmp_path)
    (tmp_path / "test" / "kiwi").rename(tmp_path / "test" / "lime")
    with pytest.raises(UserError, match="only in train/: kiwi; only in test/: lime"):
        sources.load(data_dir=str(tmp_path))
    with pytest.raises(UserError, match="data_dir .* is not a folder"):
        sources.load(data_dir=str(tmp_path / "nowhere"))
    (tmp_path / "test").rename(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="has train/ but no test/"):
        sources.load(data_dir=str(tmp_path))
    broken = tmp_path / "broken"
    folders.write_image_folder(broken, random_images(4, 8, 8, 1, 0), [0, 0, 1, 1], ["a", "b"], split=None)
    (broken / "b" / "00003.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image .*00003.png"):
        sources.load(data_dir=str(broken))
