"""The activations experiment (against a manual forward pass), choosing and reading the image an
experiment looks at, and the `activations` command."""
import json

import numpy as np
import pytest

from kerascnn.errors import BadValue, UserError
from kerascnn.experiments import activations
from kerascnn.data.tasks import Pick, Task, pick
from tests.support import assert_one_line_error, cli, hand_softmax, load_model, written


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    return load_model(tiny_model_path)


def subject_of(model, idx_dir):
    from kerascnn.model.subject import Subject

    return Subject(model, Task(data_dir=str(idx_dir)))


@pytest.fixture(scope="module")
def tiny_subject(tiny_model, idx_dir):
    return subject_of(tiny_model, idx_dir)


@pytest.fixture(scope="module")
def bn_subject(idx_dir):
    """The batch-norm variant, with moving statistics moved off their identity start so that the
    batch-norm layer really changes the maps."""
    import keras

    from kerascnn.model.network import build_model

    keras.utils.set_random_seed(1)
    model = build_model(batchnorm=True)
    rng = np.random.default_rng(1)
    for name in ("conv1_bn", "conv2_bn"):
        layer = model.get_layer(name)
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.2, beta.shape),
                           rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2, var.shape)])
    return subject_of(model, idx_dir)


def some_image(seed=0):
    return np.random.default_rng(seed).random((28, 28, 1)).astype(np.float32)


# ---------------------------------------------------------------------------- activations
def manual_forward(model, image, names):
    """Each layer called by hand, in order, on the batch of one image (inference mode)."""
    x = image[None]
    out = {}
    for name in names:
        x = model.get_layer(name)(x, training=False)
        out[name] = np.asarray(x)[0]
    return out


def test_submodel_activations_equal_a_manual_forward_pass(tiny_subject, tiny_model):
    image = some_image(1)
    result = activations.activations(tiny_subject, image, ["conv1", "pool1", "conv2", "pool2"])
    manual = manual_forward(tiny_model, image, ["conv1", "pool1", "conv2", "pool2"])
    assert [m.shape for m in result.maps.values()] == [(28, 28, 32), (14, 14, 32), (14, 14, 32), (7, 7, 32)]
    for name in manual:
        assert result.maps[name].dtype == np.float32
        np.testing.assert_allclose(result.maps[name], manual[name], rtol=1e-5, atol=1e-6)
    assert result.layers == {n: n for n in manual}
    expected = hand_softmax(np.asarray(tiny_model(image[None], training=False), np.float64))[0]
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)
    assert result.pred == int(expected.argmax())
    np.testing.assert_array_equal(result.image, image)


def test_the_convolutions_are_the_default_layers(tiny_subject):
    result = activations.activations(tiny_subject, some_image(5))
    assert list(result.maps) == ["conv1", "conv2"]


def test_block_names_mean_the_rectified_maps_with_batch_norm(bn_subject):
    image = some_image(2)
    result = activations.activations(bn_subject, image, ["conv1", "conv2"])
    assert result.layers == {"conv1": "conv1_relu", "conv2": "conv2_relu"}
    manual = manual_forward(bn_subject.model, image, ["conv1", "conv1_bn", "conv1_relu", "pool1",
                                                      "conv2", "conv2_bn", "conv2_relu"])
    np.testing.assert_allclose(result.maps["conv1"], manual["conv1_relu"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.maps["conv2"], manual["conv2_relu"], rtol=1e-5, atol=1e-5)
    assert result.maps["conv1"].min() >= 0
    # The normalisation really happened: the rectified map is not the raw convolution's ReLU.
    assert not np.allclose(result.maps["conv1"], np.maximum(manual["conv1"], 0), atol=1e-3)


def test_a_two_dimensional_image_is_accepted(tiny_subject):
    image = some_image(3)
    a = activations.activations(tiny_subject, image[..., 0], ["conv1"]).maps["conv1"]
    b = activations.activations(tiny_subject, image, ["conv1"]).maps["conv1"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layers, message", [
    (["conv1", "nope"], "'nope' is not a layer of the model: choose from conv1, pool1, conv2, pool2"),
    (["fc1"], "'fc1' has no maps"),
    (["logits"], "has no maps"),
    ([], "is empty"),
    (["conv1", "conv1"], "named twice"),
])
def test_bad_activation_layers_are_refused(tiny_subject, layers, message):
    with pytest.raises(BadValue) as error:
        activations.activations(tiny_subject, some_image(), layers)
    assert error.value.param == "layers" and message in error.value.message, str(error.value)


def test_wrong_image_shape_is_refused(tiny_subject):
    with pytest.raises(BadValue, match="does not fit") as error:
        activations.activations(tiny_subject, np.zeros((32, 32, 1), np.float32), ["conv1"])
    assert error.value.param == "image"


def test_run_picks_the_image_and_says_which(tiny_subject, idx_dir):
    images, labels = Task(data_dir=str(idx_dir)).test()
    first_three = int(np.flatnonzero(labels == 3)[0])
    result = activations.run(tiny_subject, activations.Options(Pick(class_name="3"), ("pool2",)))
    assert result.label == 3 and result.description == f"test image {first_three} (3)"
    np.testing.assert_array_equal(result.image, images[first_three])
    d = json.loads(json.dumps(result.to_dict()))
    assert d["layers"]["pool2"]["shape"] == [7, 7, 32] and d["label"] == 3
    assert d["layers"]["pool2"]["max"] == pytest.approx(float(result.maps["pool2"].max()))


# ---------------------------------------------------------------------------- choosing images
@pytest.fixture(scope="module")
def five_labels_task(tmp_path_factory):
    """An IDX task whose test labels are 3, 1, 4, 1, 5 (training images of all ten classes)."""
    from kerascnn.data.sources import write_idx

    folder = tmp_path_factory.mktemp("five")
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 255, (10, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(10))
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 255, (5, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.array([3, 1, 4, 1, 5]))
    return Task(data_dir=str(folder))


def test_pick_refuses_bad_classes_and_indices(five_labels_task):
    task = five_labels_task
    assert pick(task, Pick(class_name=1)).index == 1 and pick(task, Pick(class_name="1")).index == 1
    assert pick(task, Pick(index=4)).index == 4 and pick(task, Pick(index=4)).label == 5
    for choice, message in [(Pick(class_name=12), "class_name: 12 is not a class"),
                            (Pick(class_name="-1"), "class_name: '-1' is not a class"),
                            (Pick(index=-1), "index: must be 0 or more"),
                            (Pick(index=10 ** 6), "index: must be between 0 and 4"),
                            (Pick(class_name=9), "no test image of class '9'"),
                            (Pick(), "choose exactly one image"),
                            (Pick(class_name=1, index=2), "choose exactly one image")]:
        with pytest.raises(UserError) as error:
            pick(task, choice)
        assert message in str(error.value), str(error.value)


def _save(array, path, mode=None):
    from PIL import Image

    Image.fromarray(array, mode).save(path)
    return path


def test_own_picture_light_background_is_inverted(tmp_path, five_labels_task):
    # A dark bar on white, 60 high and 40 wide, saved as PNG and as JPEG.
    picture = np.full((60, 40, 3), 255, np.uint8)
    picture[10:50, 15:25] = 0
    for name in ("bar.png", "bar.jpg"):
        image = five_labels_task.picture(_save(picture, tmp_path / name))
        assert image.shape == (28, 28, 1) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert image[0, 0, 0] < 0.05 and image[:, 0].max() < 0.05  # the background became dark
        assert image[14, 14, 0] > 0.9                                # the stroke became light
        # Aspect kept: the 40-wide picture is padded to a square, so the bar stays narrow.
        assert (image[14, :, 0] > 0.5).sum() <= 6
    chosen = pick(five_labels_task, Pick(image=str(tmp_path / "bar.png")))
    assert chosen.label is None and chosen.index is None and chosen.description == "bar.png"


def test_own_picture_dark_background_is_kept(tmp_path, five_labels_task):
    picture = np.zeros((280, 280), np.uint8)
    picture[60:220, 130:150] = 255
    image = five_labels_task.picture(_save(picture, tmp_path / "big.png"))
    assert image.shape == (28, 28, 1)
    assert image[0, 0, 0] == 0.0 and image[14, 14, 0] > 0.9


def test_unreadable_pictures_are_user_errors(tmp_path, five_labels_task):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path in (text, empty, tmp_path / "missing.png"):
        with pytest.raises(UserError, match="cannot read image"):
            five_labels_task.picture(path)


# ---------------------------------------------------------------------------- figures
def test_figures_are_made_from_results(tiny_subject):
    import matplotlib.pyplot as plt

    from kerascnn import plots

    fig = plots.activation_grid(activations.activations(tiny_subject, some_image(), ["conv1", "conv2"]))
    assert len([ax for ax in fig.axes if ax.images]) >= 1 + 32 + 32
    result = activations.run(tiny_subject, activations.Options(Pick(index=0)))
    assert set(activations.figures(result)) == {"activations.png"}
    plt.close("all")


# ---------------------------------------------------------------------------- the command
def run(*args, **kwargs):
    return cli(*args, **kwargs)


def test_help():
    result = run("activations", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for word in ["--class", "--digit", "--index", "--image", "--layers", "sub-model", "data source's order", "--out"]:
        assert word in text


def test_activations_of_an_own_picture(tmp_path, idx_dir, tiny_model_path):
    picture = np.full((50, 50), 230, np.uint8)
    picture[10:40, 22:28] = 20
    path = _save(picture, tmp_path / "one.png")
    out = tmp_path / "acts"
    result = run("activations", "--model", tiny_model_path, "--data-dir", idx_dir, "--image", path,
                 "--layers", "conv1, pool2", "--out", out)
    assert result.exit_code == 0, result.output
    assert "conv1 (32 maps of 28x28)" in result.output and "pool2 (32 maps of 7x7)" in result.output
    assert written(out) == {"activations.png", "result.json"}
    assert (out / "activations.png").read_bytes()[:4] == b"\x89PNG"
    d = json.loads((out / "result.json").read_text())
    assert list(d["layers"]) == ["conv1", "pool2"] and d["label"] is None and d["image"] == "one.png"


@pytest.mark.parametrize("args, fragment", [
    (["--digit", 12], "--digit"),
    (["--index", -1], "--index"),
    (["--index", 10 ** 6], "--index: must be between 0 and 199"),
    (["--class", "zebra"], "--class: 'zebra' is not a class"),
    (["--digit", 1, "--layers", "conv1,fc9"], "--layers: 'fc9' is not a layer of the model"),
    (["--digit", 1, "--layers", "fc1"], "has no maps"),
    (["--digit", 1, "--layers", ","], "'--layers': ',' has an empty item"),
    (["--digit", 1, "--index", 2], "choose exactly one image"),
])
def test_activations_refuses_bad_choices(args, fragment, idx_dir, tiny_model_path, tmp_path):
    result = run("activations", "--model", tiny_model_path, "--data-dir", idx_dir, *args, "--out", tmp_path / "a")
    assert_one_line_error(result, fragment, exit_code=2)
    assert not (tmp_path / "a").exists()


def test_activations_refuses_an_unreadable_picture(tmp_path, idx_dir, tiny_model_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    result = run("activations", "--model", tiny_model_path, "--data-dir", idx_dir, "--image", bad,
                 "--out", tmp_path / "a")
    assert_one_line_error(result, "cannot read image")
    assert not (tmp_path / "a").exists()


def test_a_deep_network_shows_four_layers_spread_from_first_to_last_and_at_most_64_maps_each():
    import keras

    from kerascnn.experiments.activations import activations, default_layers
    from kerascnn.plots.inspection import MAX_MAPS, activation_grid
    from kerascnn.model.subject import Subject

    inputs = keras.Input((12, 12, 1))
    x = inputs
    for i in range(7):
        x = keras.layers.Conv2D(80 if i == 6 else 3, 3, padding="same", name=f"c{i}")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    subject = Subject(model, check=False)
    assert default_layers(subject) == ["c0", "c2", "c4", "c6"]  # round(linspace(0, 6, 4)) = 0, 2, 4, 6
    maps = activations(subject, np.zeros((12, 12, 1), np.float32))
    assert list(maps.maps) == ["c0", "c2", "c4", "c6"] and maps.maps["c6"].shape[-1] == 80
    fig = activation_grid(maps)
    titles = [t.get_text() for sub in fig.subfigs[1].subfigs for t in [sub._suptitle] if t is not None]
    assert any(t.startswith(f"c6: the first {MAX_MAPS} of 80 maps of 12x12") for t in titles), titles
    assert sum(1 for ax in fig.axes if ax.images) == 1 + 3 * 3 + MAX_MAPS  # the input, 3 maps x 3, 64 of c6
    import matplotlib.pyplot as plt

    plt.close(fig)
