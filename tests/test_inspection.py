"""Filters and activation maps (against a manual forward pass), choosing and reading images, and the
`filters` / `activations` commands."""
import numpy as np
import pytest

from kerascnn import UserError, data, inspect


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    from kerascnn import store

    return store.load_model(tiny_model_path)


@pytest.fixture(scope="module")
def bn_model():
    """The batch-norm variant, with moving statistics moved off their identity start so that the
    batch-norm layer really changes the maps."""
    import keras

    from kerascnn.model import build_model

    keras.utils.set_random_seed(1)
    model = build_model(batchnorm=True)
    rng = np.random.default_rng(1)
    for name in ("conv1_bn", "conv2_bn"):
        layer = model.get_layer(name)
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.2, beta.shape),
                           rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2, var.shape)])
    return model


def some_image(seed=0):
    return np.random.default_rng(seed).random((28, 28, 1)).astype(np.float32)


# ---------------------------------------------------------------------------- filters
def test_conv1_kernels_as_they_are(tiny_model):
    w = inspect.filter_weights(tiny_model, "conv1")
    kernel = tiny_model.get_layer("conv1").kernel.numpy()  # (3, 3, 1, 32)
    assert w.weights.shape == (32, 1, 3, 3) and w.filters == list(range(32))
    for f in (0, 5, 31):
        np.testing.assert_array_equal(w.weights[f, 0], kernel[:, :, 0, f])
    assert w.limit == pytest.approx(np.abs(kernel).max())
    assert w.bias.shape == (32,)


def test_conv2_one_filter_and_all(tiny_model):
    kernel = tiny_model.get_layer("conv2").kernel.numpy()  # (3, 3, 32, 32)
    one = inspect.filter_weights(tiny_model, "conv2", 23)
    assert one.weights.shape == (1, 32, 3, 3) and one.filters == [23]
    for c in (0, 17):
        np.testing.assert_array_equal(one.weights[0, c], kernel[:, :, c, 23])
    every = inspect.filter_weights(tiny_model, "conv2")
    assert every.weights.shape == (32, 32, 3, 3)
    np.testing.assert_array_equal(every.weights[23], one.weights[0])


@pytest.mark.parametrize("layer, number, message", [
    ("conv3", None, "unknown convolution layer 'conv3': choose from conv1, conv2"),
    ("fc1", None, "choose from conv1, conv2"),
    ("conv2", 32, "between 0 and 31"),
    ("conv1", -1, "between 0 and 31"),
])
def test_bad_layers_and_filters_are_refused(tiny_model, layer, number, message):
    with pytest.raises(ValueError, match=message):
        inspect.filter_weights(tiny_model, layer, number)


# ---------------------------------------------------------------------------- activations
def manual_forward(model, image, names):
    """Each layer called by hand, in order, on the batch of one image (inference mode)."""
    x = image[None]
    out = {}
    for name in names:
        x = model.get_layer(name)(x, training=False)
        out[name] = np.asarray(x)[0]
    return out


def test_submodel_activations_equal_a_manual_forward_pass(tiny_model):
    image = some_image(1)
    result = inspect.activations(tiny_model, image, ["conv1", "pool1", "conv2", "pool2"])
    manual = manual_forward(tiny_model, image, ["conv1", "pool1", "conv2", "pool2"])
    assert [m.shape for m in result.maps.values()] == [(28, 28, 32), (14, 14, 32), (14, 14, 32), (7, 7, 32)]
    for name in manual:
        assert result.maps[name].dtype == np.float32
        np.testing.assert_allclose(result.maps[name], manual[name], rtol=1e-5, atol=1e-6)
    assert result.layers == {n: n for n in manual}
    logits = np.asarray(tiny_model(image[None], training=False), np.float64)[0]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)
    assert result.pred == int(expected.argmax())
    np.testing.assert_array_equal(result.image, image)


def test_block_names_mean_the_rectified_maps_with_batch_norm(bn_model):
    image = some_image(2)
    result = inspect.activations(bn_model, image, ["conv1", "conv2"])
    assert result.layers == {"conv1": "conv1_relu", "conv2": "conv2_relu"}
    manual = manual_forward(bn_model, image, ["conv1", "conv1_bn", "conv1_relu", "pool1",
                                              "conv2", "conv2_bn", "conv2_relu"])
    np.testing.assert_allclose(result.maps["conv1"], manual["conv1_relu"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.maps["conv2"], manual["conv2_relu"], rtol=1e-5, atol=1e-5)
    assert result.maps["conv1"].min() >= 0
    # The normalisation really happened: the rectified map is not the raw convolution's ReLU.
    assert not np.allclose(result.maps["conv1"], np.maximum(manual["conv1"], 0), atol=1e-3)


def test_a_two_dimensional_image_is_accepted(tiny_model):
    image = some_image(3)
    a = inspect.activations(tiny_model, image[..., 0], ["conv1"]).maps["conv1"]
    b = inspect.activations(tiny_model, image, ["conv1"]).maps["conv1"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layers, message", [
    (["conv1", "nope"], "unknown layer 'nope': choose from conv1, pool1, conv2, pool2"),
    (["fc1"], "layer 'fc1' has no maps"),
    (["logits"], "has no maps"),
    ([], "at least one layer"),
    (["conv1", "conv1"], "named twice"),
])
def test_bad_activation_layers_are_refused(tiny_model, layers, message):
    with pytest.raises(ValueError, match=message):
        inspect.activations(tiny_model, some_image(), layers)


def test_wrong_image_shape_is_refused(tiny_model):
    with pytest.raises(ValueError, match="does not fit"):
        inspect.activations(tiny_model, np.zeros((32, 32, 1), np.float32), ["conv1"])


# ---------------------------------------------------------------------------- choosing images
def test_pick_refuses_bad_digits_and_indices():
    labels = np.array([3, 1, 4, 1, 5], np.int64)
    assert data.pick(labels, digit=1) == 1 and data.pick(labels, index=4) == 4
    for kwargs, message in [({"digit": 12}, "--digit must be 0-9"), ({"digit": -1}, "--digit"),
                            ({"index": -1}, "--index must be between 0 and 4"),
                            ({"index": 10 ** 6}, "--index must be between 0 and 4"),
                            ({"digit": 9}, "no test image of digit 9"), ({}, "choose one image")]:
        with pytest.raises(UserError, match=message):
            data.pick(labels, **kwargs)


def _save(array, path, mode=None):
    from PIL import Image

    Image.fromarray(array, mode).save(path)
    return path


def test_own_picture_light_background_is_inverted(tmp_path):
    # A dark bar on white, 60 high and 40 wide, saved as PNG and as JPEG.
    picture = np.full((60, 40, 3), 255, np.uint8)
    picture[10:50, 15:25] = 0
    for name in ("bar.png", "bar.jpg"):
        image = data.load_image_file(_save(picture, tmp_path / name))
        assert image.shape == (28, 28, 1) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert image[0, 0, 0] < 0.05 and image[:, 0].max() < 0.05  # the background became dark
        assert image[14, 14, 0] > 0.9                                # the stroke became light
        # Aspect kept: the 40-wide picture is padded to a square, so the bar stays narrow.
        assert (image[14, :, 0] > 0.5).sum() <= 6


def test_own_picture_dark_background_is_kept(tmp_path):
    picture = np.zeros((280, 280), np.uint8)
    picture[60:220, 130:150] = 255
    image = data.load_image_file(_save(picture, tmp_path / "big.png"))
    assert image.shape == (28, 28, 1)
    assert image[0, 0, 0] == 0.0 and image[14, 14, 0] > 0.9


def test_unreadable_pictures_are_user_errors(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for path in (text, empty, tmp_path / "missing.png"):
        with pytest.raises(UserError, match="cannot read image"):
            data.load_image_file(path)


# ---------------------------------------------------------------------------- figures
def test_figures_are_made_from_results(tiny_model):
    from kerascnn import plots

    fig = plots.filter_grid(inspect.filter_weights(tiny_model, "conv1"))
    assert len([ax for ax in fig.axes if ax.images]) == 32 and len(fig.axes) == 32 + 1  # + the colourbar
    limits = {ax.images[0].get_clim() for ax in fig.axes[:32]}
    assert len(limits) == 1 and limits.pop()[0] < 0  # one shared scale, centred on zero
    fig = plots.filter_grid(inspect.filter_weights(tiny_model, "conv2"))
    assert fig.axes[0].images[0].get_array().shape == (32 * 4 - 1, 32 * 4 - 1)
    fig = plots.activation_grid(inspect.activations(tiny_model, some_image(), ["conv1", "conv2"]))
    assert len([ax for ax in fig.axes if ax.images]) >= 1 + 32 + 32
    import matplotlib.pyplot as plt

    plt.close("all")


# ---------------------------------------------------------------------------- the commands
def run(*args, **kwargs):
    from click.testing import CliRunner

    from cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def assert_one_line_error(result, fragment):
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output and fragment in lines[0], lines[0]


@pytest.mark.parametrize("command, words", [
    ("filters", ["--layer", "--filter", "conv2", "all", "centred on zero", "filter 23"]),
    ("activations", ["--digit", "--index", "--image", "--layers", "sub-model", "test split"]),
])
def test_help(command, words):
    result = run(command, "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for word in words:
        assert word in text


@pytest.mark.parametrize("args, name", [
    ([], "filters_conv1.png"),
    (["--layer", "conv2", "--filter", "23"], "filters_conv2_23.png"),
    (["--layer", "conv2", "--filter", "all"], "filters_conv2.png"),
])
def test_filters_writes_the_default_file_in_the_current_folder(args, name, tmp_path, tiny_model_path,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("filters", "--model", tiny_model_path, *args)
    assert result.exit_code == 0, result.output
    assert f"wrote {name}" in result.output
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, fragment", [
    (["--layer", "conv3"], "unknown convolution layer 'conv3'"),
    (["--layer", "conv2", "--filter", "32"], "between 0 and 31"),
    (["--filter", "some"], "--filter must be a filter number or 'all'"),
])
def test_filters_refuses_bad_layers_and_filters(args, fragment, tmp_path, tiny_model_path):
    result = run("filters", "--model", tiny_model_path, *args, "--out", tmp_path / "f.png")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "f.png").exists()


def test_missing_model_is_one_line(tmp_path):
    assert_one_line_error(run("filters", "--model", tmp_path / "none.keras"), "model file not found")


def test_activations_of_an_own_picture(tmp_path, tiny_model_path):
    picture = np.full((50, 50), 230, np.uint8)
    picture[10:40, 22:28] = 20
    path = _save(picture, tmp_path / "one.png")
    out = tmp_path / "acts.png"
    result = run("activations", "--model", tiny_model_path, "--image", path, "--layers", "conv1, pool2",
                 "--out", out)
    assert result.exit_code == 0, result.output
    assert "conv1: 32 maps of 28x28" in result.output and "pool2: 32 maps of 7x7" in result.output
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, fragment", [
    (["--digit", 12], "--digit must be 0-9"),
    (["--index", -1], "--index must be between 0 and 199"),
    (["--index", 10 ** 6], "--index must be between 0 and 199"),
    (["--digit", 1, "--layers", "conv1,fc9"], "unknown layer 'fc9'"),
    (["--digit", 1, "--layers", "fc1"], "has no maps"),
])
def test_activations_refuses_bad_choices(args, fragment, idx_dir, tiny_model_path, tmp_path):
    result = run("activations", "--model", tiny_model_path, "--data-dir", idx_dir, *args,
                 "--out", tmp_path / "a.png")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "a.png").exists()


def test_activations_refuses_an_unreadable_picture(tmp_path, tiny_model_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    assert_one_line_error(run("activations", "--model", tiny_model_path, "--image", bad), "cannot read image")
