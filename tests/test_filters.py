"""The filters experiment: a convolution layer's raw kernels, read against the layer's own weights,
on the assignment's network and on RGB / oddly named models; the figure; the `filters` command."""
import json

import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.experiments import filters
from tests.support import assert_one_line_error, cli, load_model, written


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    return load_model(tiny_model_path)


@pytest.fixture(scope="module")
def tiny_subject(tiny_model, idx_dir):
    from kerascnn.model.subject import Subject
    from kerascnn.data.tasks import Task

    return Subject(tiny_model, Task(data_dir=str(idx_dir)))


@pytest.fixture(scope="module")
def rgb_subject():
    """An RGB model whose convolutions have unusual names and no bias in the second one."""
    import keras

    from kerascnn.model.subject import Subject

    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 5, name="stem")(inputs)
    x = keras.layers.Conv2D(6, 3, use_bias=False, name="mix")(x)
    x = keras.layers.GlobalAveragePooling2D(name="squash")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    return Subject(model, check=False)


# ---------------------------------------------------------------------------- the weights
def test_conv1_kernels_as_they_are(tiny_subject, tiny_model):
    w = filters.filter_weights(tiny_subject, "conv1")
    kernel = tiny_model.get_layer("conv1").kernel.numpy()  # (3, 3, 1, 32)
    assert w.weights.shape == (32, 1, 3, 3) and w.filters == list(range(32))
    for f in (0, 5, 31):
        np.testing.assert_array_equal(w.weights[f, 0], kernel[:, :, 0, f])
    assert w.limit == pytest.approx(np.abs(kernel).max())
    np.testing.assert_array_equal(w.bias, tiny_model.get_layer("conv1").bias.numpy())
    assert not w.chosen


def test_the_first_convolution_is_the_default(tiny_subject):
    default = filters.run(tiny_subject, filters.Options())
    assert default.layer == "conv1"
    np.testing.assert_array_equal(default.weights, filters.filter_weights(tiny_subject, "conv1").weights)


def test_conv2_one_filter_and_all(tiny_subject, tiny_model):
    kernel = tiny_model.get_layer("conv2").kernel.numpy()  # (3, 3, 32, 32)
    one = filters.filter_weights(tiny_subject, "conv2", 23)
    assert one.weights.shape == (1, 32, 3, 3) and one.filters == [23] and one.chosen
    for c in (0, 17):
        np.testing.assert_array_equal(one.weights[0, c], kernel[:, :, c, 23])
    every = filters.filter_weights(tiny_subject, "conv2")
    assert every.weights.shape == (32, 32, 3, 3)
    np.testing.assert_array_equal(every.weights[23], one.weights[0])


def test_any_names_any_channels_and_no_bias(rgb_subject):
    model = rgb_subject.model
    assert rgb_subject.conv_layers() == ["stem", "mix"]
    stem = filters.filter_weights(rgb_subject)
    assert stem.layer == "stem" and stem.weights.shape == (4, 3, 5, 5)
    kernel = model.get_layer("stem").kernel.numpy()
    for f, c in ((0, 0), (3, 2), (1, 1)):
        np.testing.assert_array_equal(stem.weights[f, c], kernel[:, :, c, f])
    mix = filters.filter_weights(rgb_subject, "mix", 5)
    np.testing.assert_array_equal(mix.weights[0], model.get_layer("mix").kernel.numpy()[:, :, :, 5].transpose(2, 0, 1))
    assert mix.bias.tolist() == [0.0]  # no bias: zeros, not an error


@pytest.mark.parametrize("layer, number, param, message", [
    ("conv3", None, "layer", "'conv3' is not a convolution layer of cnn: choose from conv1, conv2"),
    ("fc1", None, "layer", "choose from conv1, conv2"),
    ("pool1", None, "layer", "choose from conv1, conv2"),
    ("conv2", 32, "filter", "between 0 and 31"),
    ("conv1", -1, "filter", "between 0 and 31"),
])
def test_bad_layers_and_filters_are_refused(tiny_subject, layer, number, param, message):
    with pytest.raises(BadValue) as error:
        filters.filter_weights(tiny_subject, layer, number)
    assert error.value.param == param and message in error.value.message, str(error.value)


def test_a_model_without_convolutions_is_refused():
    import keras

    from kerascnn.model.subject import Subject

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)), name="flat")
    with pytest.raises(BadValue, match="no convolution layers") as error:
        filters.filter_weights(Subject(model, check=False))
    assert error.value.param == "layer"


def test_table_and_json(tiny_subject, tiny_model):
    result = filters.run(tiny_subject, filters.Options("conv2", 23))
    kernel = tiny_model.get_layer("conv2").kernel.numpy()[:, :, :, 23]
    table = filters.table(result)
    assert [row[0] for row in table.rows] == [23]
    assert table.rows[0][1] == f"{kernel.min():.4f}" and table.rows[0][2] == f"{kernel.max():.4f}"
    d = json.loads(json.dumps(result.to_dict()))
    np.testing.assert_allclose(np.array(d["weights"])[0], kernel.transpose(2, 0, 1), atol=1e-7)
    assert "conv2" in filters.summary(result)


# ---------------------------------------------------------------------------- figures
def test_figures_are_made_from_results(tiny_subject, rgb_subject):
    import matplotlib.pyplot as plt

    from kerascnn import plots

    fig = plots.filter_grid(filters.filter_weights(tiny_subject, "conv1"))
    assert len([ax for ax in fig.axes if ax.images]) == 32 and len(fig.axes) == 32 + 1  # + the colourbar
    limits = {ax.images[0].get_clim() for ax in fig.axes[:32]}
    assert len(limits) == 1 and limits.pop()[0] < 0  # one shared scale, centred on zero
    fig = plots.filter_grid(filters.filter_weights(tiny_subject, "conv2"))
    assert fig.axes[0].images[0].get_array().shape == (32 * 4 - 1, 32 * 4 - 1)
    assert set(filters.figures(filters.run(tiny_subject, filters.Options("conv2", 23)))) == {"filters_conv2_23.png"}
    assert set(filters.figures(filters.run(rgb_subject, filters.Options()))) == {"filters_stem.png"}
    plt.close("all")


# ---------------------------------------------------------------------------- the command
def run(*args, **kwargs):
    return cli(*args, **kwargs)


def test_help():
    result = run("filters", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for word in ["--layer", "--filter", "conv2", "all", "centred on zero", "filter 23", "--out", "result.json"]:
        assert word in text


@pytest.mark.parametrize("args, name", [
    ([], "filters_conv1.png"),
    (["--layer", "conv2", "--filter", "23"], "filters_conv2_23.png"),
    (["--layer", "conv2", "--filter", "all"], "filters_conv2.png"),
])
def test_filters_writes_into_runs_filters_of_the_current_folder(args, name, tmp_path, idx_dir, tiny_model_path,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("filters", "--model", tiny_model_path, "--data-dir", idx_dir, *args)
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs" / "filters"
    assert f"wrote runs/filters/: {name} result.json" in result.output
    assert written(out) == {name, "result.json"}
    assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "result.json").read_text())["layer"] == name.split("_")[1].removesuffix(".png")


@pytest.mark.parametrize("args, fragment", [
    (["--layer", "conv3"], "--layer: 'conv3' is not a convolution layer"),
    (["--layer", "conv2", "--filter", "32"], "--filter: must be between 0 and 31"),
    (["--filter", "some"], "must be a filter number (0, 1, ...) or 'all'"),
])
def test_filters_refuses_bad_layers_and_filters(args, fragment, tmp_path, idx_dir, tiny_model_path):
    result = run("filters", "--model", tiny_model_path, "--data-dir", idx_dir, *args, "--out", tmp_path / "f")
    line = assert_one_line_error(result, fragment, exit_code=2)
    assert "--filter" in line or "--layer" in line
    assert not (tmp_path / "f").exists()


def test_missing_model_is_one_line(tmp_path):
    result = run("filters", "--model", tmp_path / "none.keras", "--out", tmp_path / "f")
    assert_one_line_error(result, "model file not found", exit_code=1)
    assert not (tmp_path / "f").exists()
