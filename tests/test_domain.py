"""The input domain (kerascnn.model.domain, kerascnn.model.folding): a model that takes [0, 255] or [-1, 1] is
read as Keras reads it. Checked against Keras' own `evaluate` on pipelines that apply the
preprocessing themselves, against attacks written here in the model's own units, and against maps
written here (2x - 1, 255x) rather than the library's."""
import json

import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.model.domain import FAMILIES, MODES, InputDomain, check_preprocess, parse_range
from tests.support import assert_one_line_error, cli

CLASSES = ("ant", "bee", "cow", "doe", "elk")


# ---------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("text, expected", [("0,255", (0.0, 255.0)), ("-1, 1", (-1.0, 1.0)), ("0.5,2e2", (0.5, 200.0))])
def test_a_range_is_two_numbers_low_first(text, expected):
    assert parse_range(text) == expected


@pytest.mark.parametrize("text, fragment", [("255,0", "LO must be below HI"), ("1,1", "LO must be below HI"),
                                            ("a,b", "two numbers"), ("0", "LO,HI"), ("0,1,2", "LO,HI"),
                                            ("0,inf", "finite"), (",1", "LO,HI")])
def test_a_bad_range_is_refused_naming_why(text, fragment):
    with pytest.raises(BadValue, match=fragment) as error:
        parse_range(text)
    assert error.value.param == "input_range"


def test_preprocess_names_are_keras_modes_and_families():
    import keras

    for name in FAMILIES:  # each family is a keras.applications module with its own preprocess_input
        assert callable(getattr(keras.applications, name).preprocess_input)
    assert check_preprocess("MobileNet_V2") == "mobilenet_v2" and check_preprocess("tf") == "tf"
    with pytest.raises(BadValue, match="unknown 'alexnet'.*mobilenet_v2") as error:
        check_preprocess("alexnet")
    assert error.value.param == "preprocess" and all(m in str(error.value) for m in MODES)


# ---------------------------------------------------------------------------- the map
def test_the_maps_are_keras_own_preprocessing_of_0_255_pixels():
    import keras

    x = np.random.default_rng(0).random((2, 3, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(InputDomain(0, 255).apply(x), x * 255, rtol=1e-6)
    np.testing.assert_allclose(InputDomain(-1, 1).apply(x), 2 * x - 1, atol=1e-6)
    np.testing.assert_allclose(InputDomain(preprocess="mobilenet_v2").apply(x), 2 * x - 1, atol=1e-5)
    caffe = InputDomain(preprocess="caffe").apply(x)
    np.testing.assert_allclose(caffe, keras.applications.vgg16.preprocess_input(x * 255), atol=1e-3)
    np.testing.assert_allclose(caffe[..., 0] - caffe[..., 2], 255 * (x[..., 2] - x[..., 0]) - 103.939 + 123.68,
                               atol=1e-3)  # BGR: the blue channel comes first
    torch = InputDomain(preprocess="torch")
    np.testing.assert_allclose(torch.scale(3), 1 / np.array([0.229, 0.224, 0.225]), rtol=1e-5)
    assert InputDomain(0, 255).in_model_units(0.03, 1) == pytest.approx(7.65)
    assert InputDomain(preprocess="torch").in_model_units(0.03, 3) == pytest.approx(
        [0.03 / 0.229, 0.03 / 0.224, 0.03 / 0.225], rel=1e-5)
    with pytest.raises(BadValue, match="for RGB images"):
        InputDomain(preprocess="caffe").check_channels(1, "m.keras")
    InputDomain(preprocess="tf").check_channels(1, "m.keras")  # [-1, 1] fits any channel count


def _body(inputs, classes: int = 5, seed: int = 0):
    import keras

    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_a")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv_b")(x)
    x = keras.layers.Flatten()(x)
    return keras.layers.Dense(classes, name="scores")(x)


@pytest.mark.parametrize("kind", ["rescaling", "tutorial", "normalization", "nested", "plain", "doubling"])
def test_the_domain_is_read_off_the_model(kind):
    import keras

    from kerascnn.model.domain import infer

    inputs = keras.Input((12, 12, 3))
    x = inputs
    if kind == "rescaling":
        x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    elif kind == "tutorial":  # Keras' tutorial: augmentation, then Rescaling(1./255)
        x = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1)])(x)
        x = keras.layers.Rescaling(1.0 / 255)(x)
    elif kind == "normalization":  # ConvNeXt's: ImageNet's mean and variance in 0-255 units
        x = keras.layers.Normalization(mean=[123.7, 116.3, 103.5], variance=[3409.0, 3262.0, 3291.0])(x)
    elif kind == "nested":  # a keras.applications-style base inside a Sequential
        inner_in = keras.Input((12, 12, 3))
        base = keras.Model(inner_in, keras.layers.Rescaling(1.0 / 255)(inner_in))
        x = base(x)
    elif kind == "doubling":  # a Rescaling that does not come from 0-255 pixels
        x = keras.layers.Rescaling(2.0, offset=-1)(x)
    domain = infer(keras.Model(inputs, _body(x)))
    if kind in ("plain", "doubling"):
        assert domain.identity and domain.source == "default"
    else:
        assert (domain.low, domain.high) == (0.0, 255.0) and domain.source.startswith("inferred")


@pytest.mark.parametrize("domain, to_model", [(InputDomain(0, 255), lambda x: 255 * x),
                                              (InputDomain(-1, 1), lambda x: 2 * x - 1),
                                              (InputDomain(preprocess="caffe"), None)])
def test_the_folded_model_is_the_model_on_mapped_pixels_sharing_its_weights(domain, to_model):
    import keras

    from kerascnn.model.folding import fold, path_tensors

    inputs = keras.Input((10, 9, 3))
    model = keras.Model(inputs, _body(inputs))
    folded = fold(model, domain)
    x = np.random.default_rng(1).random((4, 10, 9, 3)).astype(np.float32)
    mapped = to_model(x) if to_model else keras.applications.resnet50.preprocess_input(255 * x)
    np.testing.assert_allclose(np.asarray(folded(x)), np.asarray(model(mapped)), rtol=1e-4, atol=1e-4)
    assert folded.get_layer("conv_a") is model.get_layer("conv_a")  # shared, not copied
    maps = keras.Model(folded.inputs[0], path_tensors(folded, "conv_b")[1])(x)
    np.testing.assert_allclose(np.asarray(maps), np.asarray(keras.Model(inputs, model.get_layer("conv_b").output)(mapped)),
                               rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------- evaluate agrees with Keras
def _blocks(n: int, seed: int):
    """uint8 RGB images (n, 24, 24, 3): noise plus a coloured square placed by class."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    images = rng.integers(0, 90, (n, 24, 24, 3))
    for i, c in enumerate(labels):
        r, col = 2 + 8 * (c // 3), 2 + 8 * (c % 3)
        images[i, r:r + 7, col:col + 7, :] = np.roll([250, 140, 30], c)
    return images.astype(np.uint8), labels


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from kerascnn.data.folders import write_image_folder

    root = tmp_path_factory.mktemp("domain_folder")
    for split, n, seed in (("train", 150, 0), ("test", 60, 1)):
        images, labels = _blocks(n, seed)
        write_image_folder(root, images, labels, CLASSES, split)
    return root


def _keras_data(root, split: str, preprocess=None):
    """The split as Keras' tutorial reads it: image_dataset_from_directory, floats in [0, 255]."""
    import keras

    ds = keras.utils.image_dataset_from_directory(root / split, image_size=(24, 24), batch_size=16,
                                                  shuffle=split == "train", seed=0, verbose=False)
    return ds if preprocess is None else ds.map(lambda x, y: (preprocess(x), y))


def _trained(kind: str, root):
    """A small classifier trained as its kind is trained in Keras: `tutorial` on [0, 255] batches with
    Rescaling inside; `mobilenet` on batches through mobilenet_v2.preprocess_input ([-1, 1])."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 24, 3))
    if kind == "tutorial":
        preprocess = None
        x = keras.layers.RandomContrast(0.1, seed=0)(inputs)  # the class is where the square is: no flips
        x = keras.layers.Rescaling(1.0 / 255)(x)
    else:
        preprocess = keras.applications.mobilenet_v2.preprocess_input
        x = inputs
    model = keras.Model(inputs, _body(x), name=kind)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(_keras_data(root, "train", preprocess), epochs=8, verbose=0, shuffle=False)  # the dataset shuffles
    accuracy = model.evaluate(_keras_data(root, "test", preprocess), verbose=0, return_dict=True)["accuracy"]
    return model, accuracy


@pytest.mark.parametrize("kind, options", [("tutorial", []), ("mobilenet", ["--preprocess", "mobilenet_v2"])])
def test_evaluate_gives_keras_own_accuracy(kind, options, folder, tmp_path):
    from kerascnn.outputs import store

    model, keras_accuracy = _trained(kind, folder)
    assert keras_accuracy >= 0.6  # learnt something, so that a wrong domain would show
    path = store.save_model(model, tmp_path / f"{kind}.keras")
    result = cli("evaluate", "--model", path, "--data-dir", folder, *options, "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    d = json.loads((tmp_path / "out" / "result.json").read_text())
    assert abs(d["accuracy"] - keras_accuracy) <= 0.001
    if kind == "tutorial":
        assert d["input_domain"]["range"] == [0.0, 255.0] and "Rescaling" in d["input_domain"]["source"]
        assert "input domain of tutorial: [0, 255] (inferred: the model starts with Rescaling(1/255))" in result.stderr
    else:
        assert d["input_domain"]["preprocess"] == "mobilenet_v2" and d["input_domain"]["source"] == "--preprocess"
        assert d["input_domain"]["black"] == [-1.0] * 3 and d["input_domain"]["white"] == [1.0] * 3
    unread = cli("evaluate", "--model", path, "--data-dir", folder, "--input-range", "0,1", "--out", tmp_path / "o2",
                 "--json")  # read as [0, 1], as before: not what Keras gives
    assert unread.exit_code == 0, unread.output
    assert abs(json.loads((tmp_path / "o2" / "result.json").read_text())["accuracy"] - keras_accuracy) >= 0.1


@pytest.mark.parametrize("args, fragment", [
    (["--input-range", "255,0"], "--input-range"),
    (["--input-range", "zero,one"], "two numbers"),
    (["--preprocess", "alexnet"], "mobilenet_v2"),
    (["--preprocess", "tf", "--input-range", "-1,1"], "not both"),
])
def test_bad_domain_options_are_one_line_at_parse_time(args, fragment, tmp_path):
    result = cli("evaluate", *args, "--out", tmp_path / "out")
    assert_one_line_error(result, fragment, exit_code=2)
    assert not (tmp_path / "out").exists()


def test_an_rgb_preprocessing_on_a_greyscale_model_is_refused_naming_the_option(tmp_path):
    result = cli("occlude", "--digit", 7, "--preprocess", "caffe", "--out", tmp_path / "out")
    assert_one_line_error(result, "--preprocess: 'caffe' is for RGB images", exit_code=2)


# ---------------------------------------------------------------------------- experiments in the domain
def _twins():
    """The same network twice: `unit` takes [0, 1]; `scaled` takes [0, 255] (Rescaling(1/255) first)."""
    import keras

    from kerascnn.model.subject import Subject

    keras.utils.set_random_seed(3)
    unit_in = keras.Input((16, 16, 3))
    unit = keras.Model(unit_in, _body(unit_in), name="unit")
    scaled_in = keras.Input((16, 16, 3))
    scaled = keras.Model(scaled_in, _body(keras.layers.Rescaling(1 / 255)(scaled_in)), name="scaled")
    scaled.set_weights(unit.get_weights())
    return Subject(unit, check=False), Subject(scaled, check=False), scaled


def test_an_attack_at_eps_003_on_a_0_255_model_is_the_attack_at_765_in_its_own_units():
    import tensorflow as tf

    from kerascnn.attacks.fgm import fgm
    from kerascnn.attacks.projected_gradient import pgd

    unit, scaled, raw = _twins()
    x = np.random.default_rng(4).random((24, 16, 16, 3)).astype(np.float32)
    labels = unit.logits(x).argmax(1)
    ours = fgm(scaled.logits_model, x, labels, 0.03)
    # FGSM written here, in the model's own units: eps 7.65, clipped to [0, 255]
    x255 = tf.constant(x * 255)
    with tf.GradientTape() as tape:
        tape.watch(x255)
        loss = tf.keras.losses.sparse_categorical_crossentropy(labels, raw(x255), from_logits=True)
    by_hand = tf.clip_by_value(x255 + 7.65 * tf.sign(tape.gradient(loss, x255)), 0, 255).numpy()
    np.testing.assert_allclose(ours.images * 255, by_hand, atol=2e-3)
    assert np.abs(ours.images - x).max() <= 0.03 + 1e-6 and 0 <= ours.images.min() and ours.images.max() <= 1
    np.testing.assert_array_equal(ours.predicted, np.asarray(raw(ours.images * 255)).argmax(1))
    # PGD on the [0, 255] model fools exactly the images it fools on its [0, 1] twin
    a, b = (pgd(s.logits_model, x, labels, 0.03, steps=10, seed=0) for s in (unit, scaled))
    np.testing.assert_array_equal(a.success, b.success)
    np.testing.assert_allclose(a.images, b.images, atol=1e-4)


def test_occlusion_fills_with_the_middle_of_the_range_and_gradients_stay_complete():
    import keras

    from kerascnn.attributions.gradients import completeness, integrated_gradients
    from kerascnn.attributions.patches import occlude

    _, scaled, raw = _twins()
    signed_in = keras.Input((16, 16, 3))
    signed = keras.Model(signed_in, _body(signed_in), name="signed")
    from kerascnn.model.subject import Subject

    minus_one = Subject(signed, check=False, domain=InputDomain.given("-1,1"))
    image = np.random.default_rng(5).random((16, 16, 3)).astype(np.float32)
    for subject, model, grey, to_model in ((scaled, raw, 127.5, lambda v: 255 * v),
                                           (minus_one, signed, 0.0, lambda v: 2 * v - 1)):
        result = occlude(subject.logits_model, image, 0, patch=8, stride=8)
        copy = to_model(image).copy()
        copy[:8, :8, :] = grey  # the first position, filled by hand in the model's units
        p = np.asarray(keras.ops.softmax(model(copy[None])))[0]
        np.testing.assert_allclose(result.probabilities[0], p, atol=1e-5)
        attributions = integrated_gradients(subject.logits_model, image[None], [0], steps=128)
        check = completeness(subject.logits_model, image[None], [0], attributions)
        z = np.asarray(model(np.stack([to_model(image), to_model(np.zeros_like(image))])), np.float64)[:, 0]
        assert check["difference"][0] == pytest.approx(z[0] - z[1], rel=1e-4, abs=1e-4)
        assert abs(check["sum"][0] - check["difference"][0]) <= 0.05 * abs(check["difference"][0]) + 1e-3
