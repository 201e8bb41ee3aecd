"""APGD (attacks.apgd) checked against the reference's schedule, closed forms and re-prediction: the
checkpoints recomputed by the reference's own loop, the step size halving at each of them where
the loss cannot rise (a model with constant logits), the DLR losses against NumPy, the ball and
[0, 1] on every image, and on a linear model the closed-form L-infinity distance to the boundary
deciding which images can be fooled at all."""
import numpy as np
import pytest

from kerascnn.attacks.auto_pgd import apgd, checkpoints, loss_values
from kerascnn.errors import BadValue
from tests.test_robustness import images_of, tiny_model


def reference_checkpoints(n_iter):
    """fra31/auto-attack's loop: counter3 counts iterations; at counter3 == k, check, shrink k."""
    k, least, shrink = max(int(0.22 * n_iter), 1), max(int(0.06 * n_iter), 1), max(int(0.03 * n_iter), 1)
    out, counter3 = [], 0
    for i in range(n_iter):
        counter3 += 1
        if counter3 == k:
            out.append(i + 1)
            k = max(k - shrink, least)
            counter3 = 0
    return out


@pytest.mark.parametrize("steps", [1, 5, 10, 37, 100, 250])
def test_checkpoints_follow_the_reference(steps):
    assert checkpoints(steps) == reference_checkpoints(steps)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


def constant_model(shape=(6, 6, 1), classes=4):
    """Logits that do not depend on the image: the loss can never rise."""
    import keras

    inputs = keras.Input(shape)
    dense = keras.layers.Dense(classes)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([np.zeros(dense.kernel.shape, np.float32), np.arange(classes, dtype=np.float32)])
    return model


@pytest.mark.parametrize("steps", [20, 100])
def test_step_size_halves_at_every_checkpoint_when_the_loss_cannot_rise(steps):
    model = constant_model()
    images = images_of((6, 6, 1), n=5)
    labels = np.full(5, 3)  # the class with the largest constant logit: right, and unfoolable
    result = apgd(model, images, labels, 0.1, steps=steps)
    # starts at 2 eps and halves at each checkpoint: 2 / 2**checkpoints
    assert result.settings["final_step_over_eps"] == pytest.approx(2.0 / 2 ** len(checkpoints(steps)), rel=1e-5)
    assert not result.success.any()


def test_dlr_losses_match_their_formulas():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (50, 7)).astype(np.float32)
    y = rng.integers(0, 7, 50)
    t = (y + 1 + rng.integers(0, 6, 50)) % 7
    s = -np.sort(-z, axis=1)
    own = z[np.arange(50), y]
    other = np.where(z.argmax(1) == y, s[:, 1], s[:, 0])
    dlr = -(own - other) / (s[:, 0] - s[:, 2] + 1e-12)
    dlr_t = -(own - z[np.arange(50), t]) / (s[:, 0] - 0.5 * (s[:, 2] + s[:, 3]) + 1e-12)
    ce = np.log(np.exp(z).sum(1)) - own
    for loss, expected in (("dlr", dlr), ("dlr-t", dlr_t), ("ce", ce)):
        got = loss_values(tf.constant(z), tf.constant(y, tf.int32), loss, tf.constant(t, tf.int32)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm, eps", [("linf", 0.05), ("linf", 0.3), ("l2", 0.5), ("l2", 2.0)])
@pytest.mark.parametrize("loss", ["ce", "dlr", "dlr-t"])
def test_stays_in_its_ball_and_in_range(norm, eps, loss):
    model = tiny_model(seed=1)
    images = images_of((28, 28, 1), n=10)
    images[:, :3] = 0.0  # black and white pixels at the box's edges
    images[:, -3:] = 1.0
    labels = model(images).numpy().argmax(1)
    radii = np.linspace(eps / 3, eps, 10)  # one radius per image
    result = apgd(model, images, labels, radii, norm=norm, loss=loss, steps=12, target_classes=2)
    delta = (result.images - images).reshape(10, -1)
    size = np.abs(delta).max(1) if norm == "linf" else np.sqrt((delta ** 2).sum(1))
    assert np.all(size <= radii * (1 + 1e-5) + 1e-6)
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert result.within_ball().all()
    # re-predicted from the returned arrays, by calling the model directly
    np.testing.assert_array_equal(result.success, model(result.images).numpy().argmax(1) != labels)


def linear_model(classes=3, size=8, seed=0):
    import keras

    rng = np.random.default_rng(seed)
    inputs = keras.Input((size, size, 1))
    dense = keras.layers.Dense(classes)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([rng.normal(0, 0.05, dense.kernel.shape).astype(np.float32), np.zeros(classes, np.float32)])
    return model


def test_on_a_linear_model_exactly_the_images_within_reach_are_fooled():
    """Away from the box's edges the smallest linf change to class j is (z_y - z_j) / ||w_y - w_j||_1:
    with eps 20% above it APGD must fool the image; 20% below it nothing can."""
    model = linear_model()
    w = model.layers[-1].get_weights()[0]
    rng = np.random.default_rng(1)
    images = rng.uniform(0.45, 0.55, (30, 8, 8, 1)).astype(np.float32)
    z = model(images).numpy()
    y = z.argmax(1)
    flat = np.arange(30)
    l1 = np.abs(w[:, y].T[:, :, None] - w[None, :, :]).sum(1)  # (N, K): ||w_y - w_j||_1
    distance = np.where(np.arange(3) == y[:, None], np.inf, (z[flat, y][:, None] - z) / np.maximum(l1, 1e-12)).min(1)
    keep = distance < 0.4  # the optimum stays inside (0, 1) from pixels in [0.45, 0.55]
    images, y, distance = images[keep], y[keep], distance[keep]
    assert len(images) >= 10
    for loss in ("ce", "dlr-t"):
        above = apgd(model, images, y, distance * 1.2, loss=loss, steps=50, target_classes=2)
        assert above.success.all(), loss
        below = apgd(model, images, y, distance * 0.8, loss=loss, steps=50, target_classes=2)
        assert not below.success.any(), loss


def test_restarts_and_targets_never_raise_accuracy_and_skip_what_is_fooled():
    model = tiny_model(seed=2)
    images = images_of((28, 28, 1), n=40, seed=3)
    labels = model(images).numpy().argmax(1)
    labels[:5] = (labels[:5] + 1) % 10  # five wrong clean: left unchanged
    result = apgd(model, images, labels, 0.03, loss="dlr-t", target_classes=3, restarts=2, steps=10)
    still = result.correct_per_restart.sum(axis=1)
    assert len(still) == 6 and np.all(np.diff(still) <= 0)
    np.testing.assert_array_equal(result.images[:5], images[:5])
    assert result.settings["target_classes"] == 3


def test_deterministic_under_a_seed_and_any_shape():
    model = tiny_model((12, 10, 3), classes=5, seed=4)
    images = images_of((12, 10, 3), n=8)
    labels = model(images).numpy().argmax(1)
    one = apgd(model, images, labels, 0.05, steps=8, seed=3)
    two = apgd(model, images, labels, 0.05, steps=8, seed=3)
    np.testing.assert_array_equal(one.images, two.images)
    assert one.attack == "apgd-ce" and one.images.shape == images.shape


@pytest.mark.parametrize("kwargs, param", [({"norm": "l1"}, "norm"), ({"loss": "cw"}, "loss"), ({"steps": 0}, "steps"),
                                           ({"restarts": 0}, "restarts"), ({"eot": 0}, "eot"),
                                           ({"target_classes": 0}, "target_classes"), ({"eps": -0.1}, "eps")])
def test_bad_values_name_their_parameter(kwargs, param):
    model = tiny_model(seed=5)
    images = images_of((28, 28, 1), n=2)
    args = {"eps": 0.1} | kwargs
    eps = args.pop("eps")
    with pytest.raises(BadValue) as error:
        apgd(model, images, [0, 1], eps, **args)
    assert error.value.param == param


@pytest.mark.parametrize("loss", ["ce", "dlr-t"])
def test_fooled_images_leave_early_and_nothing_else_changes(loss, monkeypatch):
    """Looks after 1, 2, 4, 8, 16 iterations let fooled images leave before the first checkpoint. Against
    the checkpoint-only schedule: the same images fooled by the same first misclassified iterates, the
    same step sizes (the checkpoints still judge whole intervals), and fewer image-iterations."""
    from kerascnn.attacks import auto_pgd

    images = images_of((28, 28, 1), n=24)
    results, work = {}, {}
    for looks in ("early", "checkpoints only"):
        model = tiny_model(seed=1)  # a fresh model each time: its own compiled segment, spied below
        labels = model(images).numpy().argmax(1)
        if looks != "early":
            monkeypatch.setattr(auto_pgd, "early_looks", lambda steps: [])
        original, sizes = auto_pgd._compile, []

        def spying(*args, original=original, sizes=sizes):
            start, segment = original(*args)
            return start, lambda state, length, *rest: (sizes.append(int(state["x"].shape[0]) * int(length)),
                                                         segment(state, length, *rest))[1]

        monkeypatch.setattr(auto_pgd, "_compile", spying)
        results[looks] = [apgd(model, images, labels, eps, loss=loss, steps=50, target_classes=3)
                          for eps in (0.02, 0.05, 0.1, 0.3)]
        work[looks] = sum(sizes)
        monkeypatch.undo()
    for early, late in zip(results["early"], results["checkpoints only"]):
        assert np.array_equal(early.success, late.success)
        np.testing.assert_allclose(early.images, late.images, atol=1e-6)
        steps = early.settings["final_step_over_eps"], late.settings["final_step_over_eps"]
        assert steps == (None, None) or steps[0] == pytest.approx(steps[1], rel=1e-6)
    fooled = [r.success.mean() for r in results["early"]]
    assert any(0 < f < 1 for f in fooled), fooled  # some fooled and some not, at one eps at least
    assert any(s is not None for s in (r.settings["final_step_over_eps"] for r in results["early"]))
    assert work["early"] < work["checkpoints only"]
