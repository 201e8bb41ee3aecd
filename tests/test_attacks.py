"""The adversarial attacks: argument checks, then properties re-checked independently of the attack
code (the returned images re-predicted by calling the model directly, norms recomputed from the
arrays), on tiny models and synthetic images; and the `kerascnn attack` commands."""
import contextlib
import json
import math

import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn import attacks
from kerascnn.attacks.loop import _reached, check_class
from tests.support import (cli, load_model, needs_mnist, needs_pretrained, probabilities,
                           written)


# ---------------------------------------------------------------------------- tiny models
def _model(kind: str, seed: int):
    """Seeded tiny models. 'linear': flatten -> Dense(10); 'conv': conv(4) -> pool -> Dense(10)."""
    import keras

    rng = np.random.default_rng(seed)
    inputs = keras.Input((28, 28, 1))
    x = inputs
    if kind == "conv":
        x = keras.layers.Conv2D(4, 3, activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    logits = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, logits)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def linear_model():
    return _model("linear", 0)


@pytest.fixture(scope="module")
def conv_model():
    return _model("conv", 1)


class Untouchable:
    """A logits model's shape, (28, 28, 1) -> 10, and nothing else: calling it fails the test, so an
    attack handed it must refuse a bad value before any work."""
    input_shape = (None, 28, 28, 1)
    output_shape = (None, 10)

    def __call__(self, *args, **kwargs):
        raise AssertionError("the model was used before the arguments were checked")


@contextlib.contextmanager
def refused(param: str):
    """A BadValue naming the library parameter `param` (the CLI maps it to its option)."""
    with pytest.raises(BadValue) as error:
        yield error
    assert error.value.param == param, str(error.value)
    assert str(error.value).startswith(f"{param}: ") and "\n" not in str(error.value)


def sources(n=4, seed=0):
    """Digit-like synthetic images in [0, 1]: dark noise with one bright block each."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 0.2, (n, 28, 28, 1)).astype(np.float32)
    for i in range(n):
        r, c = rng.integers(0, 20, 2)
        images[i, r:r + 8, c:c + 8] = 1.0
    return images


# ---------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize("spec, expected", [
    ("0-9", list(range(10))), ("3,5,8", [3, 5, 8]), ("0-4,7", [0, 1, 2, 3, 4, 7]), ("7", [7]),
    (" 2 - 3 , 2 ", [2, 3]), ("9,0", [0, 9]), ("all", list(range(10))), ("ALL", list(range(10)))])
def test_parse_classes(spec, expected):
    assert attacks.parse_classes(spec, 10) == expected


def test_parse_classes_follows_the_number_of_classes():
    assert attacks.parse_classes("all", 5) == [0, 1, 2, 3, 4]
    assert attacks.parse_classes("12,40") == [12, 40]  # no class count: only the form is checked
    with refused("classes"):
        attacks.parse_classes("0-5", 5)
    with refused("classes"):
        attacks.parse_classes("all")  # 'all' needs the count


@pytest.mark.parametrize("spec", ["", "10", "0-10", "5-3", "a", "1,,2", "1-2-3", "-1"])
def test_parse_classes_refuses(spec):
    with refused("classes"):
        attacks.parse_classes(spec, 10)


@pytest.mark.parametrize("kwargs, param", [
    ({"steps": 0}, "steps"), ({"steps": -3}, "steps"), ({"steps": 2.5}, "steps"),
    ({"lr": 0.0}, "lr"), ({"lr": -1.0}, "lr"), ({"lr": math.nan}, "lr"),
    ({"confidence": 0.0}, "confidence"), ({"confidence": 1.0}, "confidence"),
    ({"confidence": 1.5}, "confidence"), ({"confidence": -0.1}, "confidence"),
    ({"beta": -1.0}, "beta"), ({"beta": math.inf}, "beta"),
    ({"optimizer": "sgd"}, "optimizer")])
def test_check_settings_refuses(kwargs, param):
    with refused(param):
        attacks.check_settings(**kwargs)


@pytest.mark.parametrize("value, classes", [(10, 10), (-1, 10), (12, 10), (5, 5), (True, 10), (2.0, 10)])
def test_check_class_refuses(value, classes):
    with refused("target"):
        check_class(value, classes, "target")


def test_the_attacks_check_before_any_work():
    """A model that fails when called: a bad value must be refused before any use of it."""
    model = Untouchable()
    with refused("steps"):
        attacks.nontargeted(model, [1], steps=0, lr=0.1, seed=0)
    with refused("confidence"):
        attacks.nontargeted(model, [1], steps=5, lr=0.1, seed=0, confidence=1.5)
    with refused("classes"):
        attacks.nontargeted(model, [], steps=5, lr=0.1, seed=0)
    with refused("classes"):
        attacks.nontargeted(model, [3, 10], steps=5, lr=0.1, seed=0)
    with refused("beta"):
        attacks.targeted(model, np.zeros((28, 28, 1)), beta=-1, steps=5, lr=0.1, seed=0)
    with refused("classes"):
        attacks.targeted(model, np.zeros((28, 28, 1)), [11], steps=5, lr=0.1, seed=0)
    with refused("target"):
        attacks.noise(model, np.zeros((1, 28, 28, 1)), 12, steps=5, lr=0.1)
    with refused("images"):
        attacks.noise(model, np.zeros((1, 27, 28, 1)), 3, steps=5, lr=0.1)
    with refused("guide"):
        attacks.targeted(model, np.zeros((2, 28, 28, 1)), steps=5, lr=0.1, seed=0)
    with refused("target"):
        attacks.universal(model, np.zeros((28, 28, 1)), np.zeros((1, 28, 28, 1)), [0], 10)


# ---------------------------------------------------------------------------- the stop rule
@pytest.mark.parametrize("confidence", [0.3, 0.5, 0.9, 0.99, 0.9999, 0.99999])
def test_reached_agrees_with_a_float64_softmax(confidence):
    """The in-graph stop rule, even near confidence 1 where float32 log-probabilities are too coarse."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 10, 4000)
    logits = rng.normal(0, 2, (4000, 10))
    logits[np.arange(4000), targets] += rng.uniform(0, 25, 4000)
    logits = logits.astype(np.float32)
    p = probabilities(lambda x, training: x, logits)  # float64 softmax of the same float32 logits
    expected = (p.argmax(1) == targets) & (p[np.arange(4000), targets] >= confidence)
    got = _reached(tf.constant(logits), tf.constant(targets, tf.int32),
                           tf.constant((1 - confidence) / confidence, tf.float32)).numpy()
    # Only logits within float32 rounding of the threshold itself may disagree.
    margin = np.abs(p[np.arange(4000), targets] - confidence)
    assert np.all((got == expected) | (margin < 1e-6))
    assert expected.any() and (~expected).any()


# ---------------------------------------------------------------------------- nontargeted
@pytest.mark.parametrize("kind, optimizer", [("linear", "sign"), ("conv", "sign"), ("conv", "adam")])
def test_nontargeted_reaches_every_class(kind, optimizer, linear_model, conv_model):
    model = linear_model if kind == "linear" else conv_model
    result = attacks.nontargeted(model, range(10), steps=300, lr=0.05, seed=0, confidence=0.95,
                                 optimizer=optimizer)
    assert result.settings["optimizer"] == optimizer
    p = probabilities(model, result.images)
    assert result.images.shape == (10, 28, 28, 1) and result.images.dtype == np.float32
    assert result.targets.tolist() == list(range(10))
    assert np.all(p.argmax(1) == np.arange(10))
    assert np.all(p[np.arange(10), np.arange(10)] >= 0.95)
    assert result.success.all()
    assert 0.0 <= result.images.min() and result.images.max() <= 1.0
    # Each image stopped when it was done: fewer updates than the steps the batch ran.
    assert np.all(result.steps_used <= result.steps_run) and result.steps_run < 300
    assert np.allclose(result.probabilities, p, atol=1e-5)


def test_nontargeted_success_flags_are_the_models_own_answer(linear_model):
    """Too few steps: some fail; every flag must still match a fresh prediction of the images."""
    result = attacks.nontargeted(linear_model, [0, 3, 3, 9], steps=1, lr=0.01, seed=1, confidence=0.999)
    p = probabilities(linear_model, result.images)
    own = (p.argmax(1) == result.targets) & (p[np.arange(4), result.targets] >= 0.999)
    assert result.success.tolist() == own.tolist()
    assert not own.all()
    rows = result.to_dict()["results"]
    assert [r["success"] for r in rows] == own.tolist()
    assert [r["predicted"] for r in rows] == p.argmax(1).tolist()
    assert np.allclose([r["probability"] for r in rows], p.max(1), atol=1e-5)
    assert all(r["steps_used"] <= 1 for r in rows)


def test_a_done_image_stops_changing(linear_model):
    """Image i after the full run is image i after exactly steps_used[i] steps, not after one fewer."""
    full = attacks.nontargeted(linear_model, range(10), steps=300, lr=0.02, seed=2, confidence=0.99)
    assert full.success.all() and len(set(full.steps_used.tolist())) > 1
    for i in (int(full.steps_used.argmin()), int(full.steps_used.argmax())):
        used = int(full.steps_used[i])
        exact = attacks.nontargeted(linear_model, range(10), steps=used, lr=0.02, seed=2, confidence=0.99)
        np.testing.assert_allclose(exact.images[i], full.images[i], atol=1e-6)
        if used > 1:
            short = attacks.nontargeted(linear_model, range(10), steps=used - 1, lr=0.02, seed=2, confidence=0.99)
            assert not np.allclose(short.images[i], full.images[i], atol=1e-6)


def test_images_that_failed_used_every_step(linear_model):
    result = attacks.nontargeted(linear_model, range(10), steps=3, lr=0.001, seed=0, confidence=0.999999)
    assert result.steps_run == 3
    assert np.all(result.steps_used[~result.success] == 3)


def test_no_clip_lets_pixels_leave_the_unit_interval(linear_model):
    clipped = attacks.nontargeted(linear_model, [2, 5], steps=50, lr=0.5, seed=0, confidence=0.999999)
    free = attacks.nontargeted(linear_model, [2, 5], steps=50, lr=0.5, seed=0, confidence=0.999999, clip=False)
    assert 0.0 <= clipped.images.min() and clipped.images.max() <= 1.0
    assert free.images.min() < 0.0 or free.images.max() > 1.0


def test_same_seed_same_images(linear_model):
    a = attacks.nontargeted(linear_model, [1, 4], steps=5, lr=0.05, seed=3)
    b = attacks.nontargeted(linear_model, [1, 4], steps=5, lr=0.05, seed=3)
    c = attacks.nontargeted(linear_model, [1, 4], steps=5, lr=0.05, seed=4)
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_progress_is_reported_and_the_library_prints_nothing(linear_model, capsys):
    calls = []
    result = attacks.nontargeted(linear_model, range(10), steps=100, lr=0.001, seed=0, confidence=0.999999,
                                 check_every=30, progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == [30, 60, 90, 100]
    assert all(total == 10 and 0 <= done <= 10 for _, done, total in calls)
    assert calls[-1][1] == int((result.steps_used < 100).sum())
    assert capsys.readouterr().out == ""


def test_nontargeted_result_is_json(linear_model):
    result = attacks.nontargeted(linear_model, [0, 7], steps=20, lr=0.05, seed=0, confidence=0.9)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["attack"] == "nontargeted" and d["count"] == 2
    assert set(d["results"][0]) >= {"target", "predicted", "probability", "steps_used", "success"}
    assert d["successes"] == int(result.success.sum())


# ---------------------------------------------------------------------------- targeted
def test_targeted_stays_near_the_guide_and_reaches_the_classes(conv_model):
    guide = sources(1, seed=5)[0]
    result = attacks.targeted(conv_model, guide, range(10), beta=1.0, steps=150, lr=0.05, seed=0)
    p = probabilities(conv_model, result.images)
    assert np.array_equal(result.success, p.argmax(1) == np.arange(10))
    assert result.success.sum() >= 8
    expected_mse = ((result.images - guide[None]) ** 2).reshape(10, -1).mean(axis=1)
    assert np.allclose(result.mse, expected_mse, rtol=1e-6)
    assert np.all(result.steps_used == 150) and result.steps_run == 150  # no early stop
    assert 0.0 <= result.images.min() and result.images.max() <= 1.0
    d = result.to_dict()
    assert np.allclose([r["mse"] for r in d["results"]], expected_mse, rtol=1e-6)
    assert d["mean_mse"] == pytest.approx(expected_mse.mean())


def test_a_larger_beta_stays_closer_to_the_guide(linear_model):
    guide = sources(1, seed=6)[0]
    loose = attacks.targeted(linear_model, guide, [0, 5, 9], beta=0.1, steps=100, lr=0.05, seed=0)
    tight = attacks.targeted(linear_model, guide, [0, 5, 9], beta=1000.0, steps=100, lr=0.05, seed=0)
    assert tight.mse.mean() < loose.mse.mean()


# ---------------------------------------------------------------------------- noise
def test_noise_reaches_the_target_and_its_norms_match_the_arrays(conv_model):
    originals = sources(5, seed=1)
    result = attacks.noise(conv_model, originals, 3, steps=300, lr=0.01, confidence=0.9, labels=[0, 1, 2, 4, 5])
    p = probabilities(conv_model, result.images)
    assert np.array_equal(result.success, (p.argmax(1) == 3) & (p[:, 3] >= 0.9))
    assert result.success.all()
    assert 0.0 <= result.images.min() and result.images.max() <= 1.0
    assert np.array_equal(result.originals, originals)
    np.testing.assert_allclose(result.originals + result.noise, result.images, atol=1e-6)
    flat = result.noise.reshape(5, -1).astype(np.float64)
    np.testing.assert_allclose(result.l2, np.linalg.norm(flat, axis=1), rtol=1e-6)
    np.testing.assert_allclose(result.linf, np.abs(flat).max(axis=1), rtol=1e-6)
    d = json.loads(json.dumps(result.to_dict()))
    np.testing.assert_allclose([r["l2"] for r in d["results"]], np.linalg.norm(flat, axis=1), rtol=1e-6)
    np.testing.assert_allclose([r["linf"] for r in d["results"]], np.abs(flat).max(axis=1), rtol=1e-6)
    assert [r["label"] for r in d["results"]] == [0, 1, 2, 4, 5]


def test_sign_steps_bound_the_largest_pixel_change(conv_model):
    """With sign steps every pixel moves by lr per step: |noise| <= lr * steps used, image by image."""
    result = attacks.noise(conv_model, sources(4, seed=8), 7, steps=300, lr=0.01, confidence=0.99)
    assert result.settings["optimizer"] == "sign" and result.success.all()
    assert np.all(result.linf <= 0.01 * result.steps_used + 1e-6)
    assert np.all(result.steps_used > 0)


def test_noise_starts_from_zero(linear_model):
    """An image the model already calls the target with the confidence asked for needs no noise."""
    original = sources(1, seed=2)
    p = probabilities(linear_model, original)[0]
    result = attacks.noise(linear_model, original, int(p.argmax()), steps=50, lr=0.01, confidence=p.max() / 2)
    assert result.steps_used[0] == 0 and result.success[0]
    assert not result.noise.any()


def test_noise_with_a_penalty_is_smaller(linear_model):
    originals = sources(3, seed=3)
    free = attacks.noise(linear_model, originals, 8, steps=200, lr=0.01, confidence=0.999999)
    tied = attacks.noise(linear_model, originals, 8, steps=200, lr=0.01, confidence=0.999999, beta=1e4)
    assert tied.l2.mean() < free.l2.mean()


def test_universal_matches_a_fresh_prediction(linear_model):
    found = attacks.noise(linear_model, sources(1, seed=4), 6, steps=200, lr=0.02, confidence=0.99)
    images = sources(30, seed=7)
    labels = np.arange(30) % 10
    spread = attacks.universal(linear_model, found.noise[0], images, labels, 6, indices=np.arange(30) + 100)
    noisy = np.clip(images + found.noise[0][None], 0, 1)
    np.testing.assert_allclose(spread.noisy, noisy, atol=1e-7)
    clean_pred = probabilities(linear_model, images).argmax(1)
    noisy_pred = probabilities(linear_model, noisy).argmax(1)
    assert spread.fooled.mean() == pytest.approx((noisy_pred == 6).mean())
    assert spread.changed.mean() == pytest.approx((noisy_pred != clean_pred).mean())
    d = json.loads(json.dumps(spread.to_dict()))
    assert d["fraction_target"] == pytest.approx((noisy_pred == 6).mean())
    assert d["fraction_changed"] == pytest.approx((noisy_pred != clean_pred).mean())
    for c, row in d["per_class"].items():
        rows = labels == int(c)
        assert row["count"] == rows.sum()
        assert row["fraction_target"] == pytest.approx((noisy_pred[rows] == 6).mean())
        assert row["fraction_changed"] == pytest.approx((noisy_pred[rows] != clean_pred[rows]).mean())
    assert d["indices"] == list(range(100, 130))


def test_figures_draw(linear_model):
    from kerascnn import plots

    guide = sources(1, seed=5)[0]
    found = attacks.noise(linear_model, sources(2), 1, steps=20, lr=0.02, confidence=0.9)
    figures = [
        plots.attack_images(attacks.nontargeted(linear_model, [1, 2, 3], steps=5, lr=0.05, seed=0)),
        plots.attack_images(attacks.targeted(linear_model, guide, range(10), steps=5, lr=0.05, seed=0)),
        plots.noise_rows(found),
        plots.universal_pairs(attacks.universal(linear_model, found.noise[0], sources(30), np.arange(30) % 10, 1)),
    ]
    import matplotlib.pyplot as plt

    for fig in figures:
        assert fig.axes
        plt.close(fig)


# ---------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def linear_model_path(tmp_path_factory, linear_model):
    from kerascnn.outputs import store

    path = tmp_path_factory.mktemp("attack_model") / "linear.keras"
    store.save_model(linear_model, path)
    return path


def run(*args):
    return cli("attack", *args)


@pytest.mark.parametrize("command, words", [("nontargeted", "cross-entropy"), ("targeted", "beta"),
                                            ("noise", "universal")])
def test_help(command, words):
    result = run(command, "--help")
    assert result.exit_code == 0
    for option in ("--model", "--steps", "--lr", "--seed", "--out", "--no-clip", "--optimizer", words):
        assert option in result.output


@pytest.mark.parametrize("args, option", [
    (["targeted", "--target", "12"], "--target"), (["noise", "--target", "12"], "--target"),
    (["targeted", "--target", "zebra"], "--target"), (["noise", "--class", "zebra"], "--class"),
    (["targeted", "--index", "200"], "--index"), (["noise", "--index", "-1"], "--index"),
    (["noise", "--count", "10"], "--count"), (["nontargeted", "--classes", "0-10"], "--classes"),
    (["nontargeted", "--steps", "0"], "--steps"), (["targeted", "--beta", "-1"], "--beta"),
    (["noise", "--beta", "-1"], "--beta"), (["nontargeted", "--confidence", "1.5"], "--confidence"),
    (["noise", "--confidence", "0"], "--confidence"), (["nontargeted", "--lr", "0"], "--lr"),
    (["nontargeted", "--classes", "0-12"], "--classes"), (["noise", "--count", "0"], "--count"),
    (["targeted", "--optimizer", "sgd"], "--optimizer")])
def test_bad_values_are_refused_with_one_line(args, option, linear_model_path, idx_dir, tmp_path):
    result = run(*args, "--model", linear_model_path, "--data-dir", idx_dir, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output  # a usage error, like every bad option value
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and option in lines[0]
    assert not (tmp_path / "out").exists()


def test_nontargeted_command_writes_its_files(linear_model_path, idx_dir, tmp_path):
    out = tmp_path / "nt"
    result = run("nontargeted", "--model", linear_model_path, "--data-dir", idx_dir, "--classes", "0-4,7",
                 "--steps", 200, "--confidence", 0.9, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"nontargeted.png", "images.npy", "result.json"}
    images = np.load(out / "images.npy")
    summary = json.loads((out / "result.json").read_text())
    p = probabilities(load_model(linear_model_path), images)
    targets = [r["target"] for r in summary["results"]]
    assert targets == [0, 1, 2, 3, 4, 7] and images.shape == (6, 28, 28, 1)
    assert [r["success"] for r in summary["results"]] == list(
        (p.argmax(1) == targets) & (p[np.arange(6), targets] >= 0.9))
    assert summary["successes"] == 6
    assert 0 <= images.min() and images.max() <= 1


def test_targeted_and_noise_commands_on_an_idx_folder(linear_model_path, idx_dir, tmp_path):
    model = load_model(linear_model_path)
    out = tmp_path / "t"
    result = run("targeted", "--model", linear_model_path, "--data-dir", idx_dir, "--target", 3, "--steps", 30,
                 "--beta", 10, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"targeted.png", "images.npy", "result.json"}
    summary = json.loads((out / "result.json").read_text())
    images = np.load(out / "images.npy")
    assert summary["guide_label"] == 3 and len(summary["results"]) == 10
    p = probabilities(model, images)
    assert [r["success"] for r in summary["results"]] == list(p.argmax(1) == np.arange(10))

    out = tmp_path / "n"
    result = run("noise", "--model", linear_model_path, "--data-dir", idx_dir, "--target", 4, "--count", 3,
                 "--steps", 200, "--lr", 0.02, "--confidence", 0.9, "--universal", 20, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"noise.png", "universal.png", "images.npy", "originals.npy", "noise.npy",
                            "result.json"}
    summary = json.loads((out / "result.json").read_text())
    noisy, originals, noise = (np.load(out / f"{n}.npy") for n in ("images", "originals", "noise"))
    assert [r["label"] for r in summary["results"]] == [0, 1, 2]  # first of each class other than 4
    flat = noise.reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose([r["l2"] for r in summary["results"]], np.linalg.norm(flat, axis=1), rtol=1e-6)
    np.testing.assert_allclose([r["linf"] for r in summary["results"]], np.abs(flat).max(1), rtol=1e-6)
    np.testing.assert_allclose(originals + noise, noisy, atol=1e-6)
    assert 0 <= noisy.min() and noisy.max() <= 1
    p = probabilities(model, noisy)
    assert [r["success"] for r in summary["results"]] == list((p.argmax(1) == 4) & (p[:, 4] >= 0.9))
    assert summary["universal"]["count"] == 20


@needs_mnist
@needs_pretrained
def test_nontargeted_on_the_pretrained_model_succeeds_for_every_class(tmp_path):
    result = run("nontargeted", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["successes"] == 10


@needs_mnist
@needs_pretrained
def test_noise_on_real_mnist_with_the_pretrained_model(tmp_path):
    result = run("noise", "--count", 2, "--universal", 10, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["successes"] == 2


def test_pgd_and_fmn_trace_once_for_every_batch_size(linear_model):
    """One trace per model: the batch dimension is left open (a retrace per eps, restart or last batch
    was what TensorFlow warned about in the report)."""
    from kerascnn.attacks import minimal_norm as fmn
    from kerascnn.attacks import projected_gradient as projected
    from kerascnn.attacks.loop import cached

    model = linear_model
    rng = np.random.default_rng(0)
    for n in (7, 12, 3):
        x = rng.random((n, 28, 28, 1), dtype=np.float32)
        projected.pgd(model, x, np.zeros(n, int), np.full(n, 0.1, np.float32), steps=3, batch_size=5)
        fmn.minimal(model, x, steps=3, batch_size=5)
    runs = [cached(model, key, lambda: None) for key in (("pgd", "linf", False, True, True), ("fmn", "l2", False, 0.0))]
    assert [r.experimental_get_tracing_count() for r in runs] == [1, 1]
