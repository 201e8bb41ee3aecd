"""FAB (attacks.fab) against closed forms and brute force: the hyperplane-and-box projection against
scipy's linear and quadratic programs; on a linear model the smallest L-infinity and L2 changes to
the boundary, (z_y - z_t) / ||w_y - w_t||_1 and _2, which FAB must find; results re-predicted, in
[0, 1], counted only inside eps, seeded, and any input shape."""
import numpy as np
import pytest
from scipy.optimize import linprog, minimize

from kerascnn.attacks.boundary import fab, project
from kerascnn.errors import BadValue
from tests.test_robustness import images_of, tiny_model


def brute_force(p, w, b, norm):
    """The smallest change by scipy: an LP for linf (minimise s with |d_i| <= s), SLSQP for L2; None
    where the box cannot reach the hyperplane."""
    d = len(p)
    c = b - w @ p
    lo, hi = -p, 1 - p
    if norm == "linf":
        # variables (d_1..d_D, s): minimise s; d_i - s <= 0, -d_i - s <= 0; w.d = c
        a_ub = np.block([[np.eye(d), -np.ones((d, 1))], [-np.eye(d), -np.ones((d, 1))]])
        res = linprog(np.r_[np.zeros(d), 1.0], A_ub=a_ub, b_ub=np.zeros(2 * d), A_eq=np.r_[w, 0.0][None],
                      b_eq=[c], bounds=list(zip(lo, hi)) + [(0, None)], method="highs")
        return res.x[-1] if res.success else None
    res = minimize(lambda x: x @ x, np.clip(c * w / (w @ w), lo, hi), jac=lambda x: 2 * x, method="SLSQP",
                   constraints=[{"type": "eq", "fun": lambda x: w @ x - c, "jac": lambda x: w}],
                   bounds=list(zip(lo, hi)), options={"ftol": 1e-12, "maxiter": 500})
    return np.sqrt(res.fun) if res.success and abs(w @ res.x - c) < 1e-6 else None


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_matches_brute_force(norm):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, (40, 6))
    w = rng.normal(size=(40, 6))
    b = (w * rng.uniform(0, 1, (40, 6))).sum(1) + rng.normal(0, 0.3, 40)  # mostly reachable, some not
    got = project(tf.constant(points, tf.float32), tf.constant(w, tf.float32), tf.constant(b, tf.float32),
                  norm).numpy()
    inside = np.all((points + got >= -1e-6) & (points + got <= 1 + 1e-6), axis=1)
    assert inside.all()
    checked = 0
    for i in range(40):
        best = brute_force(points[i], w[i], b[i], norm)
        if best is None:  # unreachable: the box corner that comes nearest, and not on the plane
            assert abs(w[i] @ (points[i] + got[i]) - b[i]) > 1e-4
            continue
        checked += 1
        assert abs(w[i] @ (points[i] + got[i]) - b[i]) < 1e-3
        size = np.abs(got[i]).max() if norm == "linf" else np.linalg.norm(got[i])
        assert size == pytest.approx(best, rel=1e-3, abs=1e-5)
    assert checked >= 25


def clip_form_project(points, w, b, norm: str):
    """The bisection as it was written until 2026-12-06, each halving evaluating w . d as
    sum_i direction_i * clip(t sign_i, low_i, high_i) (linf) or direction_i * clip(t direction_i, ...) (L2).
    benchmarks/bench_fab.py times FAB with it against the library's."""
    import tensorflow as tf

    from kerascnn.attacks.boundary import HALVINGS, TINY

    c = b - tf.reduce_sum(w * points, axis=1)
    direction = tf.sign(c)[:, None] * w
    low, high = -points, 1.0 - points
    if norm == "linf":
        def change(t):
            return tf.clip_by_value(t[:, None] * tf.sign(direction), low, high)
        lo, hi = tf.zeros_like(c), tf.ones_like(c)
    else:
        def change(t):
            return tf.clip_by_value(t[:, None] * direction, low, high)
        lo = tf.abs(c) / tf.maximum(tf.reduce_sum(tf.square(w), axis=1), TINY)
        reach = tf.where(tf.abs(direction) > TINY, tf.maximum(-low, high) / tf.maximum(tf.abs(direction), TINY), 0.0)
        hi = tf.maximum(tf.reduce_max(reach, axis=1), lo)
    for _ in range(HALVINGS):
        mid = (lo + hi) / 2 if norm == "linf" else tf.sqrt(tf.maximum(lo, TINY) * hi)
        short = tf.reduce_sum(direction * change(mid), axis=1) < tf.abs(c)
        lo, hi = tf.where(short, mid, lo), tf.where(short, hi, mid)
    return tf.where((tf.abs(c) > 0)[:, None], change(hi), tf.zeros_like(points))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_is_bit_for_bit_the_clip_form_bisection(norm):
    """The library evaluates w . d per halving as sum |direction| min(t, reach) (half the work): the same
    float32 terms, so the same brackets and the same change, to the last bit, including pixels at 0 and 1,
    zero weights, points already on the plane and planes out of the box's reach."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    points = rng.uniform(0, 1, (64, 300)).astype(np.float32)
    points[:, :40] = np.round(points[:, :40])
    w = rng.normal(size=(64, 300)).astype(np.float32)
    w[:, 40:60] = 0
    b = ((w * points).sum(1) + rng.normal(0, 2, 64)).astype(np.float32)
    b[:4] = (w[:4] * points[:4]).sum(1)  # on the plane already (c may round to 0 or not)
    b[4:8] = 1e4  # out of reach
    args = [tf.constant(a) for a in (points, w, b)]
    got = project(*args, norm).numpy()
    assert np.array_equal(got, clip_form_project(*args, norm).numpy())
    assert np.abs(got).max() > 0


def linear_model(classes=4, size=8, seed=0):
    import keras

    rng = np.random.default_rng(seed)
    inputs = keras.Input((size, size, 1))
    dense = keras.layers.Dense(classes)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([rng.normal(0, 0.05, dense.kernel.shape).astype(np.float32), np.zeros(classes, np.float32)])
    return model


@pytest.mark.parametrize("norm, targeted", [("linf", True), ("linf", False), ("l2", True), ("l2", False)])
def test_finds_the_closed_form_distance_on_a_linear_model(norm, targeted):
    model = linear_model()
    w = model.layers[-1].get_weights()[0]
    images = np.random.default_rng(1).uniform(0.4, 0.6, (12, 8, 8, 1)).astype(np.float32)
    z = model(images).numpy()
    y = z.argmax(1)
    diff = w[:, y].T[:, :, None] - w[None, :, :]  # (N, D, K): w_y - w_j
    dual = np.abs(diff).sum(1) if norm == "linf" else np.sqrt((diff ** 2).sum(1))
    distance = np.where(np.arange(4) == y[:, None], np.inf, (z[np.arange(12), y][:, None] - z) / np.maximum(dual, 1e-12)).min(1)
    keep = distance < (0.35 if norm == "linf" else 1.5)  # the optimum stays inside the box
    result = fab(model, images[keep], y[keep], norm=norm, targeted=targeted, steps=60)
    assert result.success.all()
    np.testing.assert_allclose(result.distance, distance[keep], rtol=0.02)
    assert np.all(result.distance >= distance[keep] * (1 - 1e-4))  # never below the true minimum


def test_eps_counts_only_what_lies_inside_and_clean_mistakes_stay():
    model = tiny_model(seed=3)
    images = images_of((28, 28, 1), n=16, seed=4)
    labels = model(images).numpy().argmax(1)
    labels[:3] = (labels[:3] + 1) % 10
    result = fab(model, images, labels, 0.05, steps=20, target_classes=3)
    np.testing.assert_array_equal(result.images[:3], images[:3])
    assert np.all(result.distance[:3] == 0)
    assert result.images.min() >= 0 and result.images.max() <= 1
    np.testing.assert_array_equal(result.success, model(result.images).numpy().argmax(1) != labels)
    again = fab(model, images, labels, 0.05, steps=20, target_classes=3)
    np.testing.assert_array_equal(result.images, again.images)


def test_any_shape_and_restarts():
    model = tiny_model((12, 10, 3), classes=5, seed=4)
    images = images_of((12, 10, 3), n=6)
    labels = model(images).numpy().argmax(1)
    one = fab(model, images, labels, norm="l2", steps=15, restarts=1)
    more = fab(model, images, labels, norm="l2", steps=15, restarts=3, seed=2)
    assert one.images.shape == images.shape
    assert np.all(more.distance <= one.distance + 1e-6)  # restarts only keep smaller ones


@pytest.mark.parametrize("kwargs, param", [({"norm": "l1"}, "norm"), ({"steps": 0}, "steps"),
                                           ({"target_classes": 0}, "target_classes"), ({"restarts": 0}, "restarts"),
                                           ({"eps": -0.1}, "eps")])
def test_bad_values_name_their_parameter(kwargs, param):
    model = tiny_model(seed=5)
    args = {"eps": 0.1} | kwargs
    eps = args.pop("eps")
    with pytest.raises(BadValue) as error:
        fab(model, images_of((28, 28, 1), n=2), [0, 1], eps, **args)
    assert error.value.param == param
