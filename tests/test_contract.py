"""The contract every experiment keeps with any classifier on any task (xplique's
`test_data_types_shapes` in spirit): each experiment runs on two tiny models built here,

    digits  functional, (28, 28, 1) -> 10 logits, on an IDX folder written by the test
    pets    Sequential, (32, 32, 3) -> 5 through a softmax, layers named stem/shrink/mix/flat/head,
            on a folder of PNGs by class (cat, dog, fox, owl, yak) written by the test
    scaled  digits' task, a functional model that takes [0, 255] (Rescaling(1/255) inside, as in
            Keras' tutorial), its domain read off the model
    signed  pets' task, a Sequential that takes [-1, 1] (no preprocessing inside), its domain given as
            --preprocess mobilenet_v2 would give it

and its numbers are recomputed here by independent means: the Keras model called directly (its own
softmax output for `pets`, a NumPy softmax of the logits for `digits`), occluded copies built by
hand, sub-models built by hand, NumPy accuracy and confusion. A stray `28`, `10` or digit label in
the library makes the `pets` half fail at once, and an experiment that forgets the input domain
(feeds the model pixels in [0, 1], clips or fills in the model's units) makes `scaled` and `signed` fail:
their expected numbers come from the raw Keras model fed `to_model(pixels)`, a map written here.
"""
import json
from dataclasses import dataclass

import numpy as np
import pytest

from kerascnn.errors import UserError
from kerascnn.outputs import store
from kerascnn.experiments import get
from kerascnn.data.tasks import Pick, Task
from tests.support import assert_one_line_error, cli, hand_softmax

PET_NAMES = ("cat", "dog", "fox", "owl", "yak")


@dataclass
class Case:
    """A model, its Subject, and the test split as written by the test (in the source's order)."""
    name: str
    model: object
    subject: object
    x_test: np.ndarray      # (N, H, W, C) float32 in [0, 1]
    y_test: np.ndarray      # (N,) int64
    class_names: tuple
    ends_in_softmax: bool
    to_model: object = staticmethod(lambda x: x)   # pixels in [0, 1] -> the model's units (NumPy or tensors)

    def probabilities(self, images) -> np.ndarray:
        """The raw Keras model's class probabilities: its own output when it ends in a softmax."""
        out = np.asarray(self.model(self.to_model(np.asarray(images, np.float32)), training=False), np.float64)
        return out if self.ends_in_softmax else hand_softmax(out)

    def first_of(self, k: int) -> int:
        return int(np.flatnonzero(self.y_test == k)[0])


# ---------------------------------------------------------------------------- the two cases
def _blocks(n: int, shape, num_classes: int, seed: int, shuffle: bool) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, H, W, C): noise plus a bright square whose place (and colour) depends on the class."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    if shuffle:
        labels = rng.permutation(labels)
    height, width, channels = shape
    images = rng.integers(0, 80, (n, height, width, channels))
    for i, c in enumerate(labels):
        r, col = 2 + 5 * (c // 3), 2 + 7 * (c % 3)
        images[i, r:r + 6, col:col + 6, :] = 255 if channels == 1 else np.roll([255, 120, 0], c)
    return images.astype(np.uint8), labels.astype(np.int64)


def _seeded(model, seed: int):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def digits_data(tmp_path_factory) -> tuple:
    """(IDX folder, test images in [0, 1], test labels)."""
    from kerascnn.data.sources import write_idx

    folder = tmp_path_factory.mktemp("contract_idx")
    x_train, y_train = _blocks(40, (28, 28, 1), 10, seed=1, shuffle=True)
    x_test, y_test = _blocks(30, (28, 28, 1), 10, seed=2, shuffle=True)
    for name, array in (("train-images-idx3-ubyte", x_train[..., 0]), ("train-labels-idx1-ubyte", y_train),
                        ("t10k-images-idx3-ubyte.gz", x_test[..., 0]), ("t10k-labels-idx1-ubyte", y_test)):
        write_idx(folder / name, array)
    return folder, x_test.astype(np.float32) / 255, y_test


@pytest.fixture(scope="module")
def pets_data(tmp_path_factory) -> tuple:
    """(image folder, test images in [0, 1] in the source's order, test labels)."""
    from kerascnn.data.folders import write_image_folder

    root = tmp_path_factory.mktemp("contract_pets")
    x_train, y_train = _blocks(20, (32, 32, 3), 5, seed=3, shuffle=True)
    x_test, y_test = _blocks(15, (32, 32, 3), 5, seed=4, shuffle=True)
    write_image_folder(root, x_train, y_train, PET_NAMES, "train")
    write_image_folder(root, x_test, y_test, PET_NAMES, "test")
    # Test images are read in image_dataset_from_directory order: by class folder, then by file
    # name (the index the test wrote them under), so a stable sort by label gives that order.
    order = np.argsort(y_test, kind="stable")
    return root, x_test[order].astype(np.float32) / 255, y_test[order]


def _digits_model(name: str, seed: int, rescaling: bool = False):
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs) if rescaling else inputs
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(x)
    x = keras.layers.MaxPooling2D(2, name="pool_a")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_b")(x)
    x = keras.layers.Flatten(name="flat")(x)
    return _seeded(keras.Model(inputs, keras.layers.Dense(10, name="scores")(x), name=name), seed)


def _pets_model(name: str, seed: int):
    import keras

    return _seeded(keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, activation="relu", name="stem"),
        keras.layers.MaxPooling2D(2, name="shrink"),
        keras.layers.Conv2D(6, 3, activation="relu", name="mix"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(5, activation="softmax", name="head"),
    ], name=name), seed)


@pytest.fixture(scope="module")
def digits(digits_data) -> Case:
    from kerascnn.model.subject import Subject

    folder, x_test, y_test = digits_data
    model = _digits_model("digits", 0)
    subject = Subject(model, Task(data_dir=str(folder)))
    return Case("digits", model, subject, x_test, y_test, tuple(str(k) for k in range(10)), False)


@pytest.fixture(scope="module")
def pets(pets_data) -> Case:
    from kerascnn.model.subject import Subject

    root, x_test, y_test = pets_data
    model = _pets_model("pets", 1)
    subject = Subject(model, Task(data_dir=str(root)))
    return Case("pets", model, subject, x_test, y_test, PET_NAMES, True)


@pytest.fixture(scope="module")
def scaled(digits_data) -> Case:
    """Takes [0, 255]: read off its Rescaling layer, with no option."""
    from kerascnn.model.subject import Subject

    folder, x_test, y_test = digits_data
    model = _digits_model("scaled", 6, rescaling=True)
    subject = Subject(model, Task(data_dir=str(folder)))
    return Case("scaled", model, subject, x_test, y_test, tuple(str(k) for k in range(10)), False,
                to_model=lambda x: x * 255.0)


@pytest.fixture(scope="module")
def signed(pets_data) -> Case:
    """Takes [-1, 1], fed outside the model as keras.applications.mobilenet_v2.preprocess_input does."""
    from kerascnn.model.domain import InputDomain
    from kerascnn.model.subject import Subject

    root, x_test, y_test = pets_data
    model = _pets_model("signed", 7)
    subject = Subject(model, Task(data_dir=str(root)), domain=InputDomain.given(preprocess="mobilenet_v2"))
    return Case("signed", model, subject, x_test, y_test, PET_NAMES, True, to_model=lambda x: x * 2.0 - 1.0)


@pytest.fixture(params=["digits", "pets", "scaled", "signed"])
def case(request) -> Case:
    return request.getfixturevalue(request.param)


def titles(figures: dict) -> str:
    """Every title of every figure (suptitles, axes titles, figure texts), one string."""
    import matplotlib.pyplot as plt

    parts = []
    for fig in figures.values():
        if fig._suptitle is not None:
            parts.append(fig._suptitle.get_text())
        parts += [t.get_text() for t in fig.texts]
        for ax in fig.axes:
            parts += [ax.get_title(loc) for loc in ("left", "center", "right")]
        plt.close(fig)
    return "\n".join(parts)


def check_protocol(experiment, result, case: Case, names_in_titles=()) -> dict:
    """What every result owes: figures (titled with the task's class names where classes appear:
    each phrase of `names_in_titles` must be in a title), a table with whole rows, a summary, and a
    to_dict that is strict JSON. Returns the JSON, re-read."""
    from kerascnn.outputs.document import Table

    figures = experiment.figures(result)
    assert figures and all(name.endswith(".png") for name in figures)
    text = titles(figures)
    for name in names_in_titles:
        assert name in text, f"{name!r} not in the titles of {experiment.__name__}: {text!r}"
    table = experiment.table(result)
    assert isinstance(table, Table) and table.rows
    assert all(len(row) == len(table.header) for row in table.rows)
    assert isinstance(experiment.summary(result), str) and experiment.summary(result)
    return json.loads(store.dumps_json(result.to_dict()))


# ---------------------------------------------------------------------------- the subject
def test_the_subject_reads_shapes_classes_and_layers_from_the_model_and_task(case):
    s = case.subject
    assert s.input_shape == case.x_test.shape[1:] == s.task.input_shape
    assert s.num_classes == len(case.class_names) and s.class_names == case.class_names
    assert s.ends_in_softmax == case.ends_in_softmax
    expected = {"digits": ["conv_a", "conv_b"], "pets": ["stem", "mix"]}[{"scaled": "digits", "signed": "pets"}.get(
        case.name, case.name)]
    assert s.conv_layers() == expected and s.last_conv_layer() == expected[-1]
    images, labels = s.task.test()
    np.testing.assert_array_equal(images, case.x_test)
    np.testing.assert_array_equal(labels, case.y_test)


def test_the_input_domain_is_read_off_the_model_or_given(case):
    """What each model takes: [0, 1] by default, [0, 255] from the Rescaling layer, [-1, 1] as given;
    black and white in the model's units are what `to_model` makes of 0 and 1."""
    d = case.subject.domain_dict()
    channels = case.x_test.shape[-1]
    np.testing.assert_allclose(d["black"], np.full(channels, case.to_model(0.0)), atol=1e-6)
    np.testing.assert_allclose(d["white"], np.full(channels, case.to_model(1.0)), atol=1e-6)
    source = {"digits": "default", "pets": "default", "signed": "--preprocess"}.get(case.name, d["source"])
    assert d["source"] == source
    if case.name == "scaled":
        assert d["source"].startswith("inferred") and "Rescaling" in d["source"]
    assert case.subject.eps_in_model_units(0.03) == pytest.approx(0.03 * (case.to_model(1.0) - case.to_model(0.0)))


@pytest.mark.filterwarnings("error:The structure of")
def test_logits_are_what_the_model_softmaxes(case):
    x = case.x_test[:6]
    logits = np.asarray(case.subject.logits_model(x, training=False), np.float64)
    out = np.asarray(case.model(case.to_model(x), training=False), np.float64)
    if case.ends_in_softmax:
        np.testing.assert_allclose(hand_softmax(logits), out, atol=1e-5)
        assert not np.allclose(logits, out, atol=1e-3)  # really the values before the softmax
    elif case.subject.domain.identity:
        assert case.subject.logits_model is case.model
    else:
        np.testing.assert_allclose(logits, out, atol=1e-4)
    np.testing.assert_allclose(case.subject.logits(x), logits, atol=1e-5)
    np.testing.assert_allclose(case.subject.probabilities(x), case.probabilities(x), atol=1e-5)


@pytest.mark.parametrize("style", ["activation", "layer", "dense"])
def test_every_way_of_ending_in_a_softmax_is_read_through(style):
    """Activation("softmax"), a Softmax layer, or Dense(activation="softmax"): the same logits."""
    import keras

    from kerascnn.model.subject import Subject

    inputs = keras.Input((6, 5, 2))
    x = keras.layers.Conv2D(3, 2, name="c")(inputs)
    x = keras.layers.Flatten()(x)
    if style == "dense":
        out = keras.layers.Dense(4, activation="softmax", name="d")(x)
    else:
        x = keras.layers.Dense(4, name="d")(x)
        out = (keras.layers.Activation("softmax") if style == "activation" else keras.layers.Softmax())(x)
    model = _seeded(keras.Model(inputs, out), 5)
    subject = Subject(model, check=False)
    assert subject.ends_in_softmax
    x = np.random.default_rng(0).random((3, 6, 5, 2)).astype(np.float32)
    logits = np.asarray(subject.logits_model(x, training=False), np.float64)
    np.testing.assert_allclose(hand_softmax(logits), np.asarray(model(x, training=False)), atol=1e-5)
    dense = model.get_layer("d")
    flat = np.asarray(keras.Model(inputs, dense.input)(x), np.float64)
    kernel, bias = dense.get_weights()
    np.testing.assert_allclose(logits, flat @ kernel + bias, atol=1e-4)


def test_a_model_that_does_not_fit_the_task_is_one_line_naming_both_shapes(digits, pets):
    from kerascnn.model.subject import Subject

    with pytest.raises(UserError) as error:
        Subject(digits.model, pets.subject.task)
    message = str(error.value)
    assert "(28, 28, 1)" in message and "(32, 32, 3)" in message and "\n" not in message
    assert "10 classes" in message and "5 classes" in message
    with pytest.raises(UserError) as error:
        Subject(pets.model, digits.subject.task)
    assert "(32, 32, 3)" in str(error.value) and "(28, 28, 1)" in str(error.value)


def test_a_model_with_the_right_shape_but_not_the_classes_is_refused(pets):
    import keras

    from kerascnn.model.subject import Subject

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(7)(keras.layers.Flatten()(inputs)), name="seven")
    with pytest.raises(UserError) as error:
        Subject(model, pets.subject.task)
    assert "7 classes" in str(error.value) and "5 classes" in str(error.value)


def test_the_commands_say_it_in_one_line_too(digits, pets, tmp_path):
    path = store.save_model(digits.model, tmp_path / "digits.keras")
    root = pets.subject.task.data_dir
    result = cli("evaluate", "--model", path, "--data-dir", root, "--out", tmp_path / "out")
    line = assert_one_line_error(result, "(28, 28, 1)", exit_code=1)
    assert "(32, 32, 3)" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["vector", "two_outputs", "one_score"])
def test_a_file_that_is_not_an_image_classifier_is_one_line(kind, digits, tmp_path):
    import keras

    from kerascnn.model.subject import Subject

    if kind == "vector":  # a Dense-only model on a vector input
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)], name="vector")
    elif kind == "two_outputs":
        inputs = keras.Input((28, 28, 1))
        flat = keras.layers.Flatten()(inputs)
        model = keras.Model(inputs, [keras.layers.Dense(10)(flat), keras.layers.Dense(10)(flat)])
    else:
        inputs = keras.Input((28, 28, 1))
        model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    path = store.save_model(model, tmp_path / f"{kind}.keras")
    with pytest.raises(UserError, match="is not an image classifier") as error:
        Subject.load(path, digits.subject.task)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    result = cli("evaluate", "--model", path, "--data-dir", digits.subject.task.data_dir, "--out", tmp_path / "o")
    assert_one_line_error(result, "is not an image classifier", exit_code=1)


# ---------------------------------------------------------------------------- evaluation
def test_evaluation(case):
    experiment = get("evaluation")
    result = experiment.run(case.subject, experiment.Options(batch_size=7))  # batches of 7: not one call
    e = result.evaluation
    p = case.probabilities(case.x_test)
    predicted = p.argmax(axis=1)
    assert e.count == len(case.y_test)
    assert e.accuracy == pytest.approx(float(np.mean(predicted == case.y_test)))
    assert e.loss == pytest.approx(float(np.mean(-np.log(p[np.arange(len(p)), case.y_test]))), rel=1e-4)
    np.testing.assert_array_equal(e.predictions, predicted)
    k = len(case.class_names)
    confusion = np.zeros((k, k), np.int64)
    for t, q in zip(case.y_test, predicted):
        confusion[t, q] += 1
    np.testing.assert_array_equal(e.confusion, confusion)
    np.testing.assert_allclose(e.per_class_accuracy, confusion.diagonal() / confusion.sum(axis=1))
    names = case.class_names
    d = check_protocol(experiment, result, case, names_in_titles=[
        f"P: {names[predicted[0]]}", *{f"T: {names[t]}" for t in case.y_test[:12]}])
    assert d["class_names"] == list(case.class_names)
    assert set(d["per_class_accuracy"]) == set(case.class_names)
    assert [row[0] for row in experiment.table(result).rows] == list(case.class_names)


# ---------------------------------------------------------------------------- filters
def test_filters(case):
    experiment = get("filters")
    first = case.subject.conv_layers()[0]
    result = experiment.run(case.subject, experiment.Options())
    kernel = case.model.get_layer(first).kernel.numpy()            # (kh, kw, C_in, F)
    assert result.layer == first
    assert result.weights.shape == (kernel.shape[3], kernel.shape[2], kernel.shape[0], kernel.shape[1])
    for f in range(kernel.shape[3]):
        for c in range(kernel.shape[2]):
            np.testing.assert_array_equal(result.weights[f, c], kernel[:, :, c, f])
    second = case.subject.conv_layers()[1]
    one = experiment.run(case.subject, experiment.Options(second, 2))
    kernel2 = case.model.get_layer(second).kernel.numpy()
    np.testing.assert_array_equal(one.weights[0], kernel2[..., 2].transpose(2, 0, 1))
    d = check_protocol(experiment, result, case)
    assert d["layer"] == first and np.array(d["weights"]).shape == result.weights.shape


# ---------------------------------------------------------------------------- activations
def test_activations(case):
    import keras

    experiment = get("activations")
    k = len(case.class_names) - 1
    spatial = case.subject.spatial_layers()
    result = experiment.run(case.subject, experiment.Options(Pick(class_name=case.class_names[k]), tuple(spatial)))
    i = case.first_of(k)
    np.testing.assert_array_equal(result.image, case.x_test[i])
    assert result.label == k and list(result.maps) == spatial
    for name in spatial:
        sub = keras.Model(case.model.inputs[0], case.model.get_layer(name).output)
        expected = np.asarray(sub(case.to_model(case.x_test[i:i + 1]), training=False))[0]
        assert result.maps[name].shape == expected.shape
        np.testing.assert_allclose(result.maps[name], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.probabilities, case.probabilities(case.x_test[i:i + 1])[0], atol=1e-5)
    default = experiment.run(case.subject, experiment.Options(Pick(index=0)))
    assert list(default.maps) == case.subject.conv_layers()
    predicted = case.class_names[int(result.probabilities.argmax())]
    d = check_protocol(experiment, result, case,
                       names_in_titles=[f"predicted {predicted}", f"true {case.class_names[k]}"])
    assert d["predicted_name"] == predicted and d["label"] == k


# ---------------------------------------------------------------------------- occlusion
def occluded_by_hand(image, patch, stride, fill):
    """The occluded copies, row-major, built here: (copies, [(row, col), ...])."""
    height, width = image.shape[:2]
    copies, places = [], []
    for r in range(0, height - patch + 1, stride):
        for c in range(0, width - patch + 1, stride):
            copy = image.copy()
            copy[r:r + patch, c:c + patch, :] = fill
            copies.append(copy)
            places.append((r, c))
    return np.array(copies), places


@pytest.mark.parametrize("patch, stride, fill", [(None, None, 0.5), (10, 6, 0.0), (5, 4, 1.0)])
def test_occlusion(case, patch, stride, fill):
    experiment = get("occlusion")
    k = 1
    options = experiment.Options(Pick(class_name=case.class_names[k]), patch=patch, stride=stride, fill=fill)
    result = experiment.run(case.subject, options)
    r = result.occlusion
    side = case.x_test.shape[1]
    patch = side // 2 if patch is None else patch  # the defaults: half the side, half the patch
    stride = patch // 2 if stride is None else stride
    i = case.first_of(k)
    copies, places = occluded_by_hand(case.x_test[i], patch, stride, fill)
    assert (r.patch, r.stride, r.label, r.index) == (patch, stride, k, i)
    assert list(zip(r.rows.tolist(), r.cols.tolist())) == places
    np.testing.assert_array_equal(r.images, copies)
    expected = case.probabilities(copies)
    np.testing.assert_allclose(r.probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(r.prob_true, expected[:, k], atol=1e-5)
    np.testing.assert_allclose(r.clean_probabilities, case.probabilities(case.x_test[i:i + 1])[0], atol=1e-5)
    names = case.class_names
    d = check_protocol(experiment, result, case, names_in_titles=[f"P({names[k]})"])
    text = titles(experiment.figures(result))  # each prediction named: "pred NAME", or "→NAME" when many
    assert all(f"pred {names[q]}" in text or f"→{names[q]}" in text for q in expected.argmax(axis=1)), text
    assert d["class_name"] == case.class_names[k] and len(d["positions"]) == len(places)
    np.testing.assert_allclose([q["prob_true"] for q in d["positions"]], expected[:, k], atol=1e-5)
    assert [q["pred"] for q in d["positions"]] == expected.argmax(axis=1).tolist()


def test_occlusion_map(case):
    experiment = get("occlusion")
    result = experiment.run(case.subject, experiment.Options(Pick(index=3), patch=8, stride=8, map=True))
    heat = result.heat
    side = case.x_test.shape[1]
    assert heat.grid_shape == (side - 8 + 1, side - 8 + 1) and heat.label == case.y_test[3]
    copies, _ = occluded_by_hand(case.x_test[3], 8, 1, 0.5)
    np.testing.assert_allclose(heat.prob_true, case.probabilities(copies)[:, case.y_test[3]], atol=1e-5)
    figures = experiment.figures(result)
    assert set(figures) == {"occlusion.png", "occlusion_map.png"}
    names = case.class_names
    clean = case.probabilities(case.x_test[3:4])[0].argmax()
    check_protocol(experiment, result, case, names_in_titles=[f"P({names[case.y_test[3]]})", f"pred {names[clean]}"])


# ---------------------------------------------------------------------------- the attacks
def check_attack_images(attack, case: Case):
    """Images in [0, 1] of the task's shape, and the probabilities the model itself gives them."""
    assert attack.images.dtype == np.float32 and attack.images.shape[1:] == case.x_test.shape[1:]
    assert 0.0 <= attack.images.min() and attack.images.max() <= 1.0
    p = case.probabilities(attack.images)
    np.testing.assert_allclose(attack.probabilities, p, atol=1e-5)
    return p


def test_nontargeted(case):
    experiment = get("nontargeted")
    result = experiment.run(case.subject, experiment.Options(steps=40, lr=0.05, confidence=0.8))
    attack = result.attack
    k = len(case.class_names)
    assert attack.targets.tolist() == list(range(k)) and len(attack.images) == k
    p = check_attack_images(attack, case)
    own = (p.argmax(1) == np.arange(k)) & (p[np.arange(k), np.arange(k)] >= 0.8)
    assert attack.success.tolist() == own.tolist()
    assert own.sum() >= k // 2  # 40 sign steps of 0.05 move a tiny model a long way
    names = case.class_names
    d = check_protocol(experiment, result, case, names_in_titles=[
        *(f"target {name}" for name in names), *{f"pred {names[q]}" for q in p.argmax(1)}])
    assert [row["target_name"] for row in d["results"]] == list(case.class_names)
    assert [row["predicted_name"] for row in d["results"]] == [case.class_names[q] for q in p.argmax(1)]


def test_targeted(case):
    experiment = get("targeted")
    k = len(case.class_names)
    result = experiment.run(case.subject, experiment.Options(classes="0-2", steps=15, lr=0.05, beta=10.0))
    guide_class = 7 if k > 7 else k - 1  # the assignment's 7, or the last class of a smaller task
    i = case.first_of(guide_class)
    assert (result.guide_index, result.guide_label) == (i, guide_class)
    attack = result.attack
    np.testing.assert_array_equal(attack.guide, case.x_test[i])
    assert attack.targets.tolist() == [0, 1, 2]
    p = check_attack_images(attack, case)
    assert attack.success.tolist() == (p.argmax(1) == np.arange(3)).tolist()
    mse = np.mean((attack.images.astype(np.float64) - case.x_test[i]) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(attack.mse, mse, rtol=1e-6)
    d = check_protocol(experiment, result, case, names_in_titles=[f"target {name}" for name in case.class_names[:3]])
    assert d["guide_name"] == case.class_names[guide_class]
    np.testing.assert_allclose([row["mse"] for row in d["results"]], mse, rtol=1e-6)
    named = experiment.run(case.subject, experiment.Options(guide=case.class_names[0], classes="1", steps=2))
    assert named.guide_index == case.first_of(0)


def test_noise_and_universal(case):
    experiment = get("noise")
    k = len(case.class_names)
    target = 4  # the assignment's 4: both tasks have it
    options = experiment.Options(target=case.class_names[target], steps=60, lr=0.02, confidence=0.8, universal=8)
    result = experiment.run(case.subject, options)
    attack = result.attack
    others = [c for c in range(k) if c != target][:min(6, k - 1)]  # the first test image of each other class
    sources = [case.first_of(c) for c in others]
    assert result.indices.tolist() == sources and attack.labels.tolist() == others
    np.testing.assert_array_equal(attack.originals, case.x_test[sources])
    np.testing.assert_allclose(attack.originals + attack.noise, attack.images, atol=1e-6)
    p = check_attack_images(attack, case)
    np.testing.assert_allclose(attack.original_probabilities, case.probabilities(case.x_test[sources]), atol=1e-5)
    own = (p.argmax(1) == target) & (p[:, target] >= 0.8)
    assert attack.success.tolist() == own.tolist() and own.any()
    flat = attack.noise.reshape(len(sources), -1).astype(np.float64)
    np.testing.assert_allclose(attack.l2, np.linalg.norm(flat, axis=1), rtol=1e-6)
    u = result.universal
    assert len(u.indices) == 8 and sources[0] not in u.indices.tolist()
    noisy = np.clip(case.x_test[u.indices] + attack.noise[0], 0, 1)
    np.testing.assert_allclose(u.noisy, noisy, atol=1e-6)
    q = case.probabilities(noisy)
    np.testing.assert_allclose(u.noisy_probabilities, q, atol=1e-5)
    assert u.fooled.tolist() == (q.argmax(1) == target).tolist()
    names = case.class_names
    d = check_protocol(experiment, result, case, names_in_titles=[
        f"say {names[target]}", f"P({names[target]})", *{f"true {names[c]}" for c in others},
        *{f"noisy: pred {names[q]}" for q in p.argmax(1)}])
    assert d["target_name"] == case.class_names[target] and d["source_indices"] == sources
    assert d["universal"]["fraction_target"] == pytest.approx(float(np.mean(q.argmax(1) == target)))


@pytest.mark.parametrize("name", ["activations", "occlusion", "explain", "explain_attack"])
def test_every_experiment_about_one_image_records_it_under_the_same_keys(name, digits):
    """index, label and class_name: the test image's (by --index here), or null for a picture file."""
    from kerascnn.attributions.gradients import Settings
    from kerascnn.experiments.noise import Options as NoiseOptions

    experiment = get(name)
    extra = {"explain": {"settings": Settings(methods=("saliency",))},
             "explain_attack": {"settings": Settings(methods=("saliency",)), "noise": NoiseOptions(steps=2)}}
    result = experiment.run(digits.subject, experiment.Options(pick=Pick(index=5), **extra.get(name, {})))
    d = json.loads(store.dumps_json(result.to_dict()))
    label = int(digits.y_test[5])
    assert (d["index"], d["label"], d["class_name"]) == (5, label, digits.class_names[label])


def test_every_experiment_keeps_the_protocol():
    """Options, run, figures, table and summary, checked as a type; a module without them is not one."""
    import types

    from kerascnn.experiments import ON_A_MODEL, Experiment

    for name in ON_A_MODEL + ("compare", "robustness_models"):
        experiment = get(name)
        assert isinstance(experiment, Experiment), name
        assert "subject" in experiment.run.__code__.co_varnames or name in ("compare", "robustness_models")
    assert not isinstance(types.SimpleNamespace(Options=object, run=print, figures=print, table=print), Experiment)


def test_every_experiment_on_a_model_is_covered_here():
    """A new experiment must join this contract: its name must have a test above."""
    from kerascnn.experiments import ON_A_MODEL

    import tests.test_contract_explain as explained  # the explanation experiments' part of this contract

    covered = {"evaluation", "filters", "activations", "occlusion", "nontargeted", "targeted", "noise",
               "explain", "faithfulness", "explanation_metrics", "explain_attack", "maximize", "robustness_study", "certify_study",
               "corruptions", "concepts"}
    assert set(ON_A_MODEL) == covered
    for name in ON_A_MODEL:
        assert any(g.startswith(f"test_{name}") for g in (*globals(), *vars(explained)))


def test_robustness_study(case, tmp_path):
    """The report's robustness section on both models: the clean accuracy of each curve, the minimal
    perturbations and the universal noise re-predicted by the raw model; transfer between two models."""
    from kerascnn.outputs import store
    from kerascnn.experiments import robustness_study as experiment

    other = tmp_path / "other.keras"
    store.save_model(case.model, other)
    options = experiment.Options(others=(str(other),), count=10, minimal_count=4, fit=10, universal_count=10,
                                 autoattack_count=4)
    result = experiment.run(case.subject, options)
    count = min(10, len(case.y_test))
    clean = case.probabilities(case.x_test[:count]).argmax(1) == case.y_test[:count]
    for curve in result.curves + result.autoattack:  # the subject and its saved twin: the same clean accuracy
        assert curve.clean_correct.tolist() == clean[:len(curve.labels)].tolist()
        for attack, correct in curve.correct.items():
            assert not np.any(correct & ~clean[:len(curve.labels)]), attack  # never right where the clean one is wrong
    for norm, results in result.minimal.items():
        for r in results:
            m = r.attack
            q = case.probabilities(m.images)
            np.testing.assert_allclose(m.probabilities, q, atol=1e-5)
            assert m.images.min() >= 0 and m.images.max() <= 1
            assert m.success.tolist() == (q.argmax(1) != m.labels).tolist()
    fitted = result.universal.fitted
    np.testing.assert_allclose(fitted.noisy_probabilities, case.probabilities(fitted.noisy), atol=1e-5)
    assert result.transfer is not None
    names = case.class_names
    d = check_protocol(experiment, result, case, names_in_titles=[f"{names[result.universal.fit.target]}"])
    assert d["models"] == result.names and len(d["models"]) == 2
    scale = case.to_model(1.0) - case.to_model(0.0)  # eps in the model's own units: eps times the range's width
    for curve in d["robustness"].values():
        assert curve["eps_model_units"] == pytest.approx([e * scale for e in curve["eps"]])
    assert d["universal"]["eps_model_units"] == pytest.approx(d["universal"]["eps"] * scale)


@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("l2", 0.5)])
def test_autoattack_ensemble(case, norm, eps):
    """The whole standard ensemble (small budgets) on every test model through its Subject: each
    image in [0, 1] and inside its ball, the accuracy re-predicted by the raw model (in its own input
    domain), never above any component's running accuracy, and clean mistakes never counted right."""
    from kerascnn.attacks.ensemble import VERSIONS, autoattack

    count = min(8, len(case.y_test))
    images, labels = case.x_test[:count], case.y_test[:count]
    result = autoattack(case.subject.logits_model, images, labels, eps, norm=norm, steps=6, queries=40)
    assert result.settings["components"] == list(VERSIONS["standard"])
    assert result.within_ball().all()
    raw = case.probabilities(result.images).argmax(1)
    np.testing.assert_array_equal(result.success, raw != labels)
    clean = case.probabilities(images).argmax(1) == labels
    assert not np.any(~result.success & ~clean)
    running = result.correct_per_restart.sum(axis=1)
    assert np.all(np.diff(running) <= 0) and (~result.success).sum() <= running[-1]


def test_certify_study(case):
    """Certified against empirical on every test model: the smoothed classes are classes or
    abstentions, radii sigma * Phi^-1(bound) where certified, the base model's minimal changes
    re-predicted by the raw model, and no certificate broken by the attack within its radius."""
    from scipy.stats import norm

    from kerascnn.experiments import certify_study as experiment

    result = experiment.run(case.subject, experiment.Options(count=4, n=100))
    c, m = result.certified, result.minimal.attack
    assert set(c.prediction.tolist()) <= set(range(len(case.class_names))) | {-1}
    certified = c.prediction >= 0
    np.testing.assert_allclose(c.radius[certified], 0.25 * norm.ppf(c.p_lower[certified]), atol=1e-5)
    assert np.all(c.radius[~certified] == 0) and not c.violations.any()
    shipped = experiment.smoothed_path(case.subject)  # an MNIST-shaped task smooths the shipped cnn_smooth
    if shipped is None:
        q = case.probabilities(m.images)
    else:
        import keras

        q = keras.models.load_model(f"{shipped}/model.keras")(m.images).numpy()
    assert m.success.tolist() == (q.argmax(1) != m.labels).tolist()
    assert (shipped is not None) == (case.name in ("digits", "scaled"))
    d = check_protocol(experiment, result, case)
    assert d["broken_certificates"] == 0 and len(d["minimal_l2"]) == 4


def test_corruptions(case, tmp_path):
    """Common corruptions on every test model and its saved twin: the suite follows the image shape
    (MNIST-C for 28x28 grey, ImageNet-C otherwise), each accuracy re-predicted by the raw model on
    images corrupted here, the twin's equal to the subject's, and the corruption error recomputed
    from the accuracies (Hendrycks & Dietterich's sums over severities)."""
    from kerascnn.corrupt import corrupt
    from kerascnn.experiments import corruptions as experiment

    other = tmp_path / "twin.keras"
    store.save_model(case.model, other)
    suite = "mnist-c" if case.x_test.shape[1:] == (28, 28, 1) else "common"
    names = {"mnist-c": ("shot_noise", "rotate", "zigzag"), "common": ("gaussian_noise", "fog", "pixelate")}[suite]
    count = min(12, len(case.y_test))
    options = experiment.Options(corruptions=names, severities=(1, 4), count=count, others=(str(other),), seed=3)
    result = experiment.run(case.subject, options)
    assert result.suite == suite and result.names == names
    labels = case.y_test[:count]
    for i, name in enumerate(names):
        for j, severity in enumerate((1, 4)):
            images = corrupt(case.x_test[:count], name, severity, seed=3, suite_name=suite)
            expected = np.mean(case.probabilities(images).argmax(1) == labels)
            assert result.models[0].accuracy[i, j] == pytest.approx(expected)
    np.testing.assert_array_equal(result.models[1].accuracy, result.models[0].accuracy)
    assert result.models[0].clean == pytest.approx(np.mean(case.probabilities(case.x_test[:count]).argmax(1) == labels))
    d = check_protocol(experiment, result, case)
    mnist_shaped = case.name in ("digits", "scaled")
    assert (result.baseline is not None) == mnist_shaped  # the shipped cnn is the baseline of MNIST-shaped tasks
    if mnist_shaped:
        mine = 1 - result.models[0].accuracy
        base = 1 - result.baseline.accuracy
        ce = mine.sum(1) / base.sum(1)
        assert d["models"][result.models[0].model]["mce"] == pytest.approx(np.mean(ce))
    assert result.examples.shape == (len(names),) + case.x_test.shape[1:]
