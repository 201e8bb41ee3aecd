"""eps-bounded attacks (FGSM/FGM, PGD) and the robustness experiment, checked with independent math:
FGSM's output recomputed with our own tape, every image re-checked against its ball and [0, 1],
accuracy re-predicted by calling the model directly, and the gradient-masking checks of the result
exercised on results built by hand; any input shape and class count; the `kerascnn robustness` command."""
import json

import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.attacks.fgm import check_epsilons, fgm
from kerascnn.attacks.projected_gradient import pgd
from tests.support import cli, hand_softmax, load_model, written


def tiny_model(shape=(28, 28, 1), classes=10, seed=0, conv=True):
    """A seeded tiny classifier: conv(4) -> pool -> dense(classes), or a plain linear one."""
    import keras

    rng = np.random.default_rng(seed)
    inputs = keras.Input(shape)
    x = inputs
    if conv:
        x = keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(4, 3, activation="relu")(x))
    model = keras.Model(inputs, keras.layers.Dense(classes)(keras.layers.Flatten()(x)))
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


def images_of(shape, n=12, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n,) + shape).astype(np.float32)


def own_gradient(model, x, labels):
    """d cross-entropy / d x, by our own tape (not kerascnn's)."""
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.keras.losses.sparse_categorical_crossentropy(labels, model(x), from_logits=True))
    return tape.gradient(loss, x).numpy()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_fgsm_is_one_signed_step_clipped(model):
    x = images_of((28, 28, 1))
    labels = np.arange(len(x)) % 10
    result = fgm(model, x, labels, 0.1)
    expected = np.clip(x + 0.1 * np.sign(own_gradient(model, x, labels)), 0, 1)
    np.testing.assert_allclose(result.images, expected, atol=1e-6)
    targeted = fgm(model, x, labels, 0.1, targeted=True)
    np.testing.assert_allclose(targeted.images, np.clip(x - 0.1 * np.sign(own_gradient(model, x, labels)), 0, 1),
                               atol=1e-6)


def test_fgm_l2_steps_along_the_unit_gradient(model):
    x = images_of((28, 28, 1)) * 0.2 + 0.4  # inside the box: no pixel is clipped
    labels = np.zeros(len(x), np.int64)
    grad = own_gradient(model, x, labels)
    unit = grad / np.sqrt(np.sum(grad ** 2, axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(fgm(model, x, labels, 0.5, norm="l2").images, np.clip(x + 0.5 * unit, 0, 1), atol=1e-5)


@pytest.mark.parametrize("norm, eps, targeted", [("linf", [0.05, 0.1, 0.3], False), ("linf", [0.1, 0.2], True),
                                                   ("l2", [0.5, 2.0], False)])
def test_fgm_curve_is_fgm_on_the_tiled_batch_with_one_gradient_an_image(model, norm, eps, targeted, monkeypatch):
    """fgm_curve (the robustness command's FGSM column) against fgm on every (eps, image) pair and
    against our own gradient; its compiled gradient sees each image once, not once per eps."""
    from kerascnn.attacks import fgm as fgm_module

    x = images_of((28, 28, 1), n=10)
    labels = np.arange(len(x)) % 10
    seen, real = [], fgm_module._compile_direction
    monkeypatch.setattr(fgm_module, "_compile_direction", lambda *a: (lambda f: lambda v, t: (
        seen.append(len(v)), f(v, t))[1])(real(*a)))
    curve = fgm_module.fgm_curve(tiny_model(seed=3), x, labels, eps, norm=norm, targeted=targeted, batch_size=4)
    assert sum(seen) == len(x)
    tiled = fgm(tiny_model(seed=3), np.tile(x, (len(eps), 1, 1, 1)), np.tile(labels, len(eps)),
                np.repeat(np.float32(eps), len(x)), norm=norm, targeted=targeted, batch_size=4)
    np.testing.assert_array_equal(curve.eps, tiled.eps)
    np.testing.assert_array_equal(curve.originals, tiled.originals)
    np.testing.assert_array_equal(curve.labels, tiled.labels)
    if norm == "linf":  # signs: bit for bit
        np.testing.assert_array_equal(curve.images, tiled.images)
    else:               # the unit gradient's length may round one ulp apart between the two traces
        np.testing.assert_allclose(curve.images, tiled.images, atol=3e-7, rtol=0)
    np.testing.assert_array_equal(curve.predicted, tiled.predicted)
    grad = own_gradient(tiny_model(seed=3), x, labels)
    unit = np.sign(grad) if norm == "linf" else grad / np.sqrt(np.sum(grad ** 2, axis=(1, 2, 3), keepdims=True))
    sign = -1 if targeted else 1
    expected = np.concatenate([np.clip(x + sign * e * unit, 0, 1) for e in eps])
    np.testing.assert_allclose(curve.images, expected, atol=1e-5)
    with pytest.raises(BadValue) as error:
        fgm_module.fgm_curve(model, x, labels, [0.1, -1.0])
    assert error.value.param == "eps"


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 1.0)])
def test_pgd_stays_in_its_ball_and_in_range(model, norm, eps):
    x = images_of((28, 28, 1))
    radii = np.linspace(0, eps, len(x)).astype(np.float32)
    result = pgd(model, x, np.arange(len(x)) % 10, radii, norm=norm, steps=10, step_fraction=0.25, restarts=2)
    delta = (result.images - x).reshape(len(x), -1).astype(np.float64)
    size = np.abs(delta).max(axis=1) if norm == "linf" else np.sqrt((delta ** 2).sum(axis=1))
    assert np.all(size <= radii * (1 + 1e-5) + 1e-6)
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert result.within_ball().all()
    np.testing.assert_array_equal(result.images[0], x[0])  # eps 0 moves nothing


def test_accuracy_is_re_predicted_from_the_returned_arrays(model):
    x = images_of((28, 28, 1), n=20)
    labels = np.argmax(model(x).numpy(), axis=1)  # all correct clean
    result = pgd(model, x, labels, 0.2, steps=20, step_fraction=0.1)
    direct = hand_softmax(model(result.images).numpy()).argmax(axis=1)
    np.testing.assert_array_equal(result.success, direct != labels)
    assert result.to_dict()["successes"] == int((direct != labels).sum())


def test_pgd_beats_fgsm_and_restarts_never_raise_accuracy(model):
    x = images_of((28, 28, 1), n=30, seed=3)
    labels = np.argmax(model(x).numpy(), axis=1)
    one = fgm(model, x, labels, 0.05)
    many = pgd(model, x, labels, 0.05, steps=20, step_fraction=0.25, restarts=3)
    correct = many.correct_per_restart.sum(axis=1)
    assert np.all(np.diff(correct) <= 0)
    assert correct[-1] == int((~many.success).sum())
    assert (~many.success).sum() <= (~one.success).sum()


@pytest.mark.parametrize("shape, classes", [((8, 10, 3), 7), ((12, 12, 1), 2)])
def test_any_shape_and_class_count(shape, classes):
    model = tiny_model(shape, classes, conv=False)
    x = images_of(shape, n=5)
    labels = np.arange(5) % classes
    for result in (fgm(model, x, labels, 0.1), pgd(model, x, labels, 0.1, steps=3)):
        assert result.images.shape == x.shape and result.probabilities.shape == (5, classes)
        assert result.within_ball().all()


@pytest.mark.parametrize("kwargs, param", [({"eps": -0.1}, "eps"), ({"eps": float("nan")}, "eps"),
                                           ({"norm": "l1"}, "norm"), ({"steps": 0}, "steps"),
                                           ({"restarts": 0}, "restarts"), ({"labels": [10] * 3}, "labels")])
def test_bad_values_name_their_parameter(model, kwargs, param):
    args = {"labels": [0, 1, 2], "eps": 0.1} | kwargs
    with pytest.raises(BadValue) as error:
        pgd(model, images_of((28, 28, 1), n=3), args.pop("labels"), args.pop("eps"), **args)
    assert error.value.param == param


def test_eps_lists_are_read_and_checked():
    assert check_epsilons("0.3, 0,0.1") == (0.0, 0.1, 0.3)
    for bad in ("0.1,-1", "a,b", ""):
        with pytest.raises(BadValue):
            check_epsilons(bad)


# ---------------------------------------------------------------------------- the experiment's checks
def hand_result(fgsm, pgd_acc, restarts, sanity):
    """A robustness Result whose accuracies are exactly the given ones (over 10 images)."""
    from kerascnn.experiments.robustness import Options, Result

    def rows(accuracies):
        return np.array([np.arange(10) < round(10 * a) for a in accuracies])

    eps = tuple(np.linspace(0, 0.3, len(fgsm)))
    return Result(Options(eps=eps), "m", np.zeros(10, np.int64), np.ones(10, bool),
                  {"fgsm": rows(fgsm), "pgd": rows(pgd_acc)}, restarts, 1.0, sanity, {}, np.zeros((0, 1, 1, 1)), {})


def test_checks_pass_on_an_honest_curve():
    result = hand_result([1.0, 0.8, 0.5], [1.0, 0.6, 0.1], [[0.6, 0.5], [0.1, 0.1]], 0.0)
    assert all(result.checks().values()) and len(result.checks()) == 5


@pytest.mark.parametrize("fgsm, pgd_acc, restarts, sanity, failing", [
    ([1.0, 0.8, 0.5], [1.0, 0.9, 0.1], [[0.9], [0.1]], 0.0, "pgd_never_above_fgsm"),
    ([1.0, 0.5, 0.6], [1.0, 0.4, 0.4], [[0.4], [0.4]], 0.0, "fgsm_never_rises_with_eps"),
    ([1.0, 0.8, 0.5], [1.0, 0.6, 0.1], [[0.5, 0.6], [0.1, 0.1]], 0.0, "restarts_never_raise_accuracy"),
    ([1.0, 0.8, 0.5], [1.0, 0.6, 0.1], [[0.6], [0.1]], 0.2, "zero_at_huge_eps")])
def test_checks_flag_gradient_masking(fgsm, pgd_acc, restarts, sanity, failing):
    checks = hand_result(fgsm, pgd_acc, restarts, sanity).checks()
    assert [k for k, ok in checks.items() if not ok] == [failing]


# ---------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def model_path(tmp_path_factory, model):
    from kerascnn.outputs import store

    path = tmp_path_factory.mktemp("robust") / "tiny.keras"
    store.save_model(model, path)
    return path


def test_robustness_command_writes_a_checked_curve(model_path, idx_dir, tmp_path):
    out = tmp_path / "r"
    result = cli("robustness", "--model", model_path, "--data-dir", idx_dir, "--count", 40, "--steps", 5,
                 "--attack", "fgsm,pgd", "--eps", "0,0.1,0.3", "--restarts", 2, "--sanity", 10, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"robustness.png", "examples.png", "result.json"}
    data = json.loads((out / "result.json").read_text())
    assert data["eps"] == [0, 0.1, 0.3] and set(data["accuracy"]) == {"fgsm", "pgd"}
    assert set(data["checks"]) >= {"pgd_never_above_fgsm", "restarts_never_raise_accuracy", "zero_at_huge_eps"}
    assert data["checks"]["restarts_never_raise_accuracy"] and data["sanity"]["eps"] == 1.0
    # clean accuracy, re-predicted by Keras itself on the same images
    from kerascnn.data.tasks import Task

    images, labels = Task("mnist", str(idx_dir)).test()
    clean = float(np.mean(load_model(model_path)(images[:40]).numpy().argmax(1) == labels[:40]))
    assert data["accuracy"]["pgd"][0] == data["clean_accuracy"] == pytest.approx(clean)
    assert all(a <= clean for a in data["accuracy"]["pgd"])
    assert len(data["per_class"]["pgd"]) == len(np.unique(labels[:40]))
    assert data["settings"]["pgd_step_fraction"] == pytest.approx(2.5 / 5)  # the step follows the step count


def test_default_columns_are_fgsm_and_apgd_ce(model_path, idx_dir, tmp_path):
    """The quick look: FGSM and APGD-CE; APGD-CE is never above FGSM on an honest model, and the sanity
    check runs APGD-CE at linf 1."""
    result = cli("robustness", "--model", model_path, "--data-dir", idx_dir, "--count", 30, "--steps", 10,
                 "--eps", "0,0.2", "--sanity", 5, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data["accuracy"]) == ["fgsm", "apgd-ce"]
    assert data["checks"]["apgd-ce_never_above_fgsm"] and data["sanity"]["attack"] == "apgd-ce"
    assert data["sanity"]["accuracy"] == 0.0 and data["upper_bounds"] is True


@pytest.mark.parametrize("args, option", [(["--eps", "0,-0.1"], "--eps"), (["--norm", "l3"], "--norm"),
                                          (["--count", "0"], "--count"), (["--steps", "0"], "--steps"),
                                          (["--attack", "cw"], "--attack"), (["--restarts", "0"], "--restarts"),
                                          (["--attack", "autoattack,square"], "--attack"),
                                          (["--version", "fast"], "--version"), (["--queries", "0"], "--queries")])
def test_bad_values_are_one_line_exit_2(args, option, model_path, idx_dir, tmp_path):
    result = cli("robustness", *args, "--model", model_path, "--data-dir", idx_dir, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and option in lines[0]
    assert not (tmp_path / "o").exists()
