"""Attribution maps against independent math (a linear model's weights, a Grad-CAM and an occlusion
map computed by hand in NumPy), bad settings, and the `explain` and `filters --maximize` commands
on the tiny fixtures and on an RGB Sequential model ending in a softmax."""
import json

import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.attributions import gradients as attributions
from kerascnn.attributions.gradients import METHODS, Settings
from tests.support import assert_one_line_error, cli, written

SHAPE = (12, 10, 2)   # not MNIST's: a stray 28 or 1 channel fails here


@pytest.fixture(scope="module")
def linear():
    """flatten -> Dense(4) with known weights: logit k = x . W[:, k] + b[k]."""
    import keras

    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.5, (int(np.prod(SHAPE)), 4)).astype(np.float32)
    bias = rng.normal(0, 0.1, 4).astype(np.float32)
    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs)))
    model.layers[-1].set_weights([weights, bias])
    return model, weights, bias


def images(n=3, seed=1):
    return np.random.default_rng(seed).random((n,) + SHAPE).astype(np.float32)


def row(weights, k):
    return weights[:, k].reshape(SHAPE)


def test_saliency_and_smoothgrad_of_a_linear_model_are_its_weight_row(linear):
    model, w, _ = linear
    x, targets = images(), np.array([0, 3, 1])
    for got in (attributions.saliency(model, x, targets), attributions.smoothgrad(model, x, targets, samples=5)):
        for i, k in enumerate(targets):
            np.testing.assert_allclose(got[i], row(w, k), rtol=1e-5, atol=1e-6)


def test_integrated_gradients_of_a_linear_model_are_input_times_weights(linear):
    model, w, b = linear
    x, targets = images(), np.array([2, 2, 0])
    got = attributions.integrated_gradients(model, x, targets, steps=7)
    for i, k in enumerate(targets):
        np.testing.assert_allclose(got[i], (x[i] - 0.0) * row(w, k), rtol=1e-5, atol=1e-6)
    check = attributions.completeness(model, x, targets, got)
    hand = np.array([x[i].ravel().astype(np.float64) @ w[:, k] for i, k in enumerate(targets)])  # f(x) - f(0)
    np.testing.assert_allclose(check["difference"], hand, rtol=1e-5)
    np.testing.assert_allclose(check["sum"], hand, rtol=1e-5)
    assert check["relative_error"].max() < 1e-5


def test_occlusion_of_a_linear_model_by_hand(linear):
    model, w, _ = linear
    x, k, patch = images(1)[0], 1, 3
    got = attributions.occlusion(model, x[None], np.array([k]), patch)[0]
    contribution = (x * row(w, k)).sum(axis=-1)        # a black pixel removes exactly its w * x
    height, width = SHAPE[:2]
    total, count = np.zeros((height, width)), np.zeros((height, width))
    for r in range(height - patch + 1):
        for c in range(width - patch + 1):
            total[r:r + patch, c:c + patch] += contribution[r:r + patch, c:c + patch].sum()
            count[r:r + patch, c:c + patch] += 1
    np.testing.assert_allclose(got, total / count, rtol=1e-4, atol=1e-5)


def test_gradcam_matches_a_hand_computation():
    """conv (3x3, same, ReLU) -> flatten -> Dense: d logit / d A is the Dense column, so Grad-CAM is
    ReLU(sum_c mean(W[..., c, k]) A_c), with A the convolution computed here in NumPy."""
    import keras

    rng = np.random.default_rng(3)
    kernel = rng.normal(0, 0.5, (3, 3, SHAPE[2], 4)).astype(np.float32)
    conv_bias = rng.normal(0, 0.1, 4).astype(np.float32)
    dense = rng.normal(0, 0.3, (SHAPE[0] * SHAPE[1] * 4, 3)).astype(np.float32)
    inputs = keras.Input(SHAPE)
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(conv(inputs))))
    conv.set_weights([kernel, conv_bias])
    model.layers[-1].set_weights([dense, np.zeros(3, np.float32)])
    x = images(2, seed=4)
    targets = np.array([2, 0])
    got = attributions.gradcam(model, x, targets, "conv")
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    for i, k in enumerate(targets):
        a = np.zeros(SHAPE[:2] + (4,))
        for r in range(SHAPE[0]):
            for c in range(SHAPE[1]):
                a[r, c] = np.tensordot(padded[i, r:r + 3, c:c + 3], kernel, axes=3) + conv_bias
        a = np.maximum(a, 0)
        alpha = dense[:, k].reshape(SHAPE[0], SHAPE[1], 4).mean(axis=(0, 1))
        np.testing.assert_allclose(got[i], np.maximum(a @ alpha, 0), rtol=1e-4, atol=1e-6)


def test_all_methods_in_one_call_give_maps_per_image(linear):
    model, _, _ = linear
    maps = attributions.explain(model, images(), np.array([0, 1, 2]),
                                Settings(methods=("saliency", "integrated-gradients", "occlusion")))
    assert list(maps.maps) == ["saliency", "integrated-gradients", "occlusion"]
    assert all(v.shape == (3,) + SHAPE[:2] for v in maps.maps.values()) and set(maps.seconds) == set(maps.maps)


@pytest.mark.parametrize("spec, expected", [("all", METHODS), ("gradcam,saliency", ("saliency", "gradcam")),
                                            ("IG", ("integrated-gradients",)), (["occlusion"], ("occlusion",))])
def test_methods_are_parsed(spec, expected):
    assert attributions.parse_methods(spec) == expected


@pytest.mark.parametrize("settings, param", [(Settings(methods=("lime",)), "method"), (Settings(methods=()), "method"),
                                             (Settings(ig_steps=0), "ig_steps"), (Settings(smoothgrad_samples=0),
                                                                                  "smoothgrad_samples"),
                                             (Settings(occlusion_patch=0), "occlusion_patch")])
def test_bad_settings_name_their_parameter(settings, param):
    with pytest.raises(BadValue) as info:
        settings.check()
    assert info.value.param == param


# ---------------------------------------------------------------------------- the commands
def run(*args):
    return cli(*[str(a) for a in args])


@pytest.fixture
def tiny(idx_dir, tiny_model_path):
    return ["--model", tiny_model_path, "--data-dir", idx_dir]


@pytest.mark.parametrize("args, fragment", [
    (["--method", "lime"], "--method"),
    (["--method", ""], "--method"),
    (["--ig-steps", 0], "--ig-steps"),
    (["--layer", "fc1"], "--layer: 'fc1' is not a convolution layer: choose from conv1, conv2"),
    (["--layer", "pool1"], "--layer: 'pool1' is not a convolution layer"),
    (["--layer", "nope"], "--layer: 'nope' is not a layer of the model"),
    (["--layer", "conv1", "--method", "saliency"], "--layer is Grad-CAM's layer"),
    (["--faithfulness", "--digit", 3], "takes no image"),
    (["--faithfulness", "--attack", "noise"], "takes no image, --target or --attack"),
    (["--count", 3], "--count and --randomise go with --faithfulness"),
    (["--attack", "pgd"], "--attack"),
    (["--target", "zebra"], "--target: 'zebra' is not a class"),
])
def test_bad_input_is_one_line_with_exit_2(args, fragment, tiny, tmp_path):
    result = run("explain", *tiny, *args, "--out", tmp_path / "o")
    assert_one_line_error(result, fragment, exit_code=2)
    assert not (tmp_path / "o").exists()


def test_explain_writes_the_figure_maps_and_json(tiny, tmp_path):
    out = tmp_path / "one"
    result = run("explain", *tiny, "--digit", 7, "--ig-steps", 16, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"explain.png", "maps.npy", "image.npy", "result.json"}
    data = json.loads((out / "result.json").read_text())
    assert data["methods"] == list(METHODS) and data["settings"]["ig_steps"] == 16
    assert np.load(out / "maps.npy").shape == (5, 28, 28) and "integrated gradients" in result.output


def test_faithfulness_and_attack_modes_write_their_own_folders(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("explain", *tiny, "--faithfulness", "--count", 3, "--randomise", 1, "--method", "saliency,gradcam")
    assert result.exit_code == 0, result.output
    assert written(tmp_path / "runs" / "explain-faithfulness") == {"faithfulness.png", "randomisation.png",
                                                                   "randomisation_maps.png", "result.json"}
    result = run("explain", *tiny, "--attack", "noise", "--target", 4, "--index", 0, "--method", "saliency")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "runs" / "explain-attack" / "result.json").read_text())
    assert data["target"] == 4 and data["clean"]["image"] == data["image"]


def test_filters_maximize(tiny, tmp_path):
    result = run("filters", *tiny, "--maximize", "--layer", "conv2", "--filter", 3, "--steps", 3, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert written(tmp_path / "m") == {"maximize_conv2_3.png", "filters_conv2_3.png", "maximize.npy", "result.json"}
    assert np.load(tmp_path / "m" / "maximize.npy").shape == (1, 28, 28, 1)
    assert_one_line_error(run("filters", *tiny, "--steps", 3), "--steps goes with --maximize", exit_code=2)


def test_an_rgb_sequential_softmax_model(tmp_path):
    import keras

    from kerascnn.outputs import store
    from kerascnn.data.folders import write_image_folder

    rng = np.random.default_rng(5)
    x = rng.integers(0, 255, (12, 20, 24, 3)).astype(np.uint8)
    y = np.arange(12) % 3
    names = ("ant", "bee", "cow")
    write_image_folder(tmp_path / "data", x, y, names, "train")
    write_image_folder(tmp_path / "data", x, y, names, "test")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20, 24, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="first"),
                              keras.layers.Conv2D(5, 3, activation="relu", name="second"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax", name="out")])
    store.save_model(model, tmp_path / "m.keras")
    task = ["--model", tmp_path / "m.keras", "--data-dir", tmp_path / "data"]
    result = run("explain", *task, "--class", "bee", "--layer", "first", "--out", tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "e" / "maps.npy").shape == (5, 20, 24)
    assert json.loads((tmp_path / "e" / "result.json").read_text())["settings"]["gradcam_layer"] == "first"
    result = run("explain", *task, "--faithfulness", "--count", 2, "--randomise", 1, "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s" / "result.json").read_text())["randomisation"]["stages"] == [
        "trained", "out_logits", "second", "first"]
    result = run("explain", *task, "--attack", "noise", "--target", "cow", "--class", "ant", "--out", tmp_path / "a")
    assert result.exit_code == 0, result.output
    result = run("filters", *task, "--maximize", "--steps", 2, "--out", tmp_path / "f")
    assert result.exit_code == 0, result.output
    assert written(tmp_path / "f") == {"maximize_first.png", "maximize.npy", "result.json"}
