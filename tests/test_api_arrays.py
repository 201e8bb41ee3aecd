"""kc.attacks and kc.attributions on arrays: the user's own keras.Model (a softmax on [0, 255]) in,
images or maps out. Attacks: shapes, the ball, [0, 1], seeds, strength in order, and the same numbers
as the internal attack on the equivalent logits model; maps: against an independent tape, integrated
gradients' completeness, occlusion by hand, batch_size changing nothing and bounding every call;
every bad argument one BadValue naming it."""
import subprocess
import sys

import numpy as np
import pytest

import kerascnn as kc
import kerascnn.attacks  # noqa: F401 (kc.attacks, whether or not kerascnn/__init__ names it)
import kerascnn.attributions  # noqa: F401
from kerascnn.errors import BadValue

SHAPE, K = (6, 7, 2), 3   # not MNIST's: a stray 28, 10 or 1 channel fails here
N = 24


@pytest.fixture(scope="module")
def pair():
    """(softmax model taking [0, 255] with Rescaling inside, the same weights as a logits model taking [0, 1])."""
    import keras

    keras.utils.set_random_seed(3)
    conv = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")
    dense = keras.layers.Dense(K, activation="softmax", name="dense")
    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(conv(keras.layers.Rescaling(1 / 255)(inputs)))))
    pixels = keras.Input(SHAPE)
    twin_dense = keras.layers.Dense(K)
    logits = keras.Model(pixels, twin_dense(keras.layers.Flatten()(conv(pixels))))  # conv shared: same weights
    twin_dense.set_weights(dense.get_weights())
    return model, logits


@pytest.fixture(scope="module")
def data(pair):
    """N images in [0, 1] and the classes the logits model gives them (clean accuracy 1)."""
    x = np.random.default_rng(0).random((N,) + SHAPE).astype(np.float32)
    return x, np.asarray(pair[1](x)).argmax(axis=1)


def distance(a, b, norm):
    flat = (np.asarray(a, np.float64) - b).reshape(len(a), -1)
    return np.abs(flat).max(axis=1) if norm == "linf" else np.sqrt((flat ** 2).sum(axis=1))


def accuracy(logits, images, labels):
    return float(np.mean(np.asarray(logits(images)).argmax(axis=1) == labels))


# ---------------------------------------------------------------------------- attacks
ATTACKS = [("fgsm", "linf", {}), ("fgsm", "l2", {}), ("pgd", "linf", {"steps": 10}), ("pgd", "l2", {"steps": 10}),
           ("apgd", "linf", {"steps": 10}), ("apgd", "l2", {"steps": 10, "loss": "dlr"}),
           ("apgd", "linf", {"steps": 5, "target_classes": 2}), ("fab", "linf", {"steps": 10}),
           ("fab", "l2", {"steps": 10, "target_classes": None}), ("square", "linf", {"queries": 50}),
           ("square", "l2", {"queries": 50}), ("autoattack", "linf", {"steps": 5, "queries": 30})]


@pytest.mark.parametrize("name, norm, options", ATTACKS, ids=[f"{a}-{n}-{len(o)}" for a, n, o in ATTACKS])
def test_each_attack_returns_images_in_its_ball_and_the_same_twice(pair, data, name, norm, options):
    model, logits = pair
    x, y = data
    eps = 0.05 if norm == "linf" else 0.3
    attack = getattr(kc.attacks, name)
    adv = attack(model, x, y, eps, norm=norm, **options)
    assert adv.shape == x.shape and adv.dtype == np.float32
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert np.all(distance(adv, x, norm) <= eps * (1 + 1e-5) + 1e-5)
    assert accuracy(logits, adv, y) < 1.0, "the attack fooled nothing"
    np.testing.assert_array_equal(attack(model, x, y, eps, norm=norm, **options), adv)


def test_minimal_changes_the_prediction_with_the_smallest_change_it_found(pair, data):
    model, logits = pair
    x, y = data
    found = kc.attacks.minimal(model, x, y, steps=50)
    assert found.shape == x.shape and found.dtype == np.float32 and 0 <= found.min() and found.max() <= 1
    fooled = np.asarray(logits(found)).argmax(axis=1) != y
    assert fooled.mean() > 0.9
    np.testing.assert_array_equal(found[~fooled], x[~fooled])  # none found: the original
    # an eps-bounded attack at half of each image's distance cannot do better than that distance
    sizes = distance(found, x, "linf")
    half = kc.attacks.pgd(model, x[fooled], y[fooled], sizes[fooled] / 2, steps=20)
    assert accuracy(logits, half, y[fooled]) > 0.5


def test_pgd_is_at_least_as_strong_as_fgsm_which_lowers_the_clean_accuracy(pair, data):
    model, logits = pair
    x, y = data
    for eps in (0.01, 0.02, 0.04):
        # 100 steps of eps / 30 reach any corner of the ball from the random start (Madry's 40 may not,
        # and on a nearly linear model FGSM's corner is the best point)
        fgsm = accuracy(logits, kc.attacks.fgsm(model, x, y, eps), y)
        pgd = accuracy(logits, kc.attacks.pgd(model, x, y, eps, steps=100), y)
        assert pgd <= fgsm
    assert pgd <= fgsm < accuracy(logits, x, y) == 1.0


def test_pgd_reads_through_the_softmax_and_folds_the_range_once(pair, data):
    """The user's softmax model on [0, 255] gives PGD on the logits twin taking [0, 1], and the same
    images as the experiments' call (projected_gradient.pgd on Subject.logits_model)."""
    from kerascnn.attacks.projected_gradient import pgd
    from kerascnn.model.subject import Subject

    model, logits = pair
    x, y = data
    got = kc.attacks.pgd(model, x, y, 0.03, steps=15)
    np.testing.assert_allclose(got, pgd(logits, x, y, 0.03, steps=15).images, atol=1e-5)
    np.testing.assert_allclose(got, pgd(Subject(model, check=False).logits_model, x, y, 0.03, steps=15).images,
                               atol=1e-6)
    uint8 = np.round(x * 255).astype(np.uint8)
    np.testing.assert_array_equal(kc.attacks.pgd(model, uint8, y, 0.03, steps=15),
                                  kc.attacks.pgd(model, uint8 / np.float32(255), y, 0.03, steps=15))


def test_one_logits_model_per_model_and_domain(pair):
    from kerascnn.attacks.on_arrays import subject_of

    model, _ = pair
    assert subject_of(model) is subject_of(model)
    assert subject_of(model, input_range=(0, 1)) is subject_of(model, input_range="0,1")
    assert subject_of(model, input_range=(0, 1)).logits_model is not subject_of(model).logits_model


def test_batch_size_splits_the_images_and_changes_no_fgsm_image(pair, data):
    model, _ = pair
    x, y = data
    np.testing.assert_allclose(kc.attacks.fgsm(model, x, y, 0.1, batch_size=5), kc.attacks.fgsm(model, x, y, 0.1),
                               atol=1e-6)
    adv = kc.attacks.pgd(model, x, y, 0.05, batch_size=5, steps=5)
    assert np.all(distance(adv, x, "linf") <= 0.05 + 1e-5)


def test_eot_passes_average_to_the_same_gradient_on_a_deterministic_model(pair, data):
    model, _ = pair
    x, y = data
    np.testing.assert_array_equal(kc.attacks.apgd(model, x, y, 0.02, steps=5, eot=2),
                                  kc.attacks.apgd(model, x, y, 0.02, steps=5))


def test_one_channel_images_may_come_without_their_channel_axis():
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((5, 6, 1))
    model = keras.Model(inputs, keras.layers.Dense(K)(keras.layers.Flatten()(inputs)))
    x = np.random.default_rng(2).random((4, 5, 6)).astype(np.float32)
    y = np.asarray(model(x[..., None])).argmax(axis=1)
    adv = kc.attacks.fgsm(model, x, y, 0.1)
    assert adv.shape == (4, 5, 6)
    np.testing.assert_array_equal(adv, kc.attacks.fgsm(model, x[..., None], y, 0.1)[..., 0])
    assert kc.attributions.saliency(model, x).shape == (4, 5, 6)


# ---------------------------------------------------------------------------- attributions
def tape_gradient(logits, x, targets):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        chosen = tf.gather(logits(x), targets, batch_dims=1)
    return tape.gradient(chosen, x).numpy()


def test_saliency_is_the_gradient_of_the_predicted_logit(pair, data):
    model, logits = pair
    x, y = data
    grad = tape_gradient(logits, x, y)
    np.testing.assert_allclose(kc.attributions.saliency(model, x), grad.sum(axis=-1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(kc.attributions.saliency(model, x, per_channel=True), grad, rtol=1e-4, atol=1e-6)
    other = (y + 1) % K
    np.testing.assert_allclose(kc.attributions.saliency(model, x, other), tape_gradient(logits, x, other).sum(-1),
                               rtol=1e-4, atol=1e-6)


def test_integrated_gradients_add_up_to_the_logit_difference():
    """Completeness on a smooth model that ends in a softmax: the logits are computed here, in NumPy."""
    import keras

    keras.utils.set_random_seed(4)
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Dense(8, activation="tanh")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(K, activation="softmax")(hidden))
    w, b = model.layers[-1].get_weights()
    hidden_of = keras.Model(inputs, hidden)
    x = np.random.default_rng(5).random((5,) + SHAPE).astype(np.float32)
    targets = np.arange(5) % K
    maps = kc.attributions.integrated_gradients(model, x, targets, steps=64)
    assert maps.shape == (5,) + SHAPE[:2]
    rows = np.arange(5)
    logit, black = (np.asarray(hidden_of(images)) @ w + b for images in (x, np.zeros_like(x)))
    difference = logit[rows, targets] - black[rows, targets]
    assert np.abs(difference).min() > 0.01
    np.testing.assert_allclose(maps.reshape(5, -1).sum(axis=1), difference, rtol=1e-3, atol=1e-4)


def test_occlusion_by_hand_for_one_image(pair, data):
    model, logits = pair
    x, y = data
    image, k, patch = x[0], int(y[0]), 3
    h, w = SHAPE[:2]
    positions = [(r, c) for r in range(h - patch + 1) for c in range(w - patch + 1)]
    copies = np.repeat(image[None], len(positions), axis=0)
    for p, (r, c) in enumerate(positions):
        copies[p, r:r + patch, c:c + patch] = 0.0
    clean = float(np.asarray(logits(image[None]))[0, k])
    drops = clean - np.asarray(logits(copies))[:, k]
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for (r, c), drop in zip(positions, drops):
        total[r:r + patch, c:c + patch] += drop
        count[r:r + patch, c:c + patch] += 1
    got = kc.attributions.occlusion(model, x[:1], patch=patch)
    np.testing.assert_allclose(got[0], total / count, rtol=1e-4, atol=1e-5)


METHODS = {"saliency": {}, "smoothgrad": {"samples": 8}, "integrated_gradients": {"steps": 8}, "gradcam": {},
           "occlusion": {"patch": 2}}


@pytest.mark.parametrize("name", METHODS)
def test_batch_size_changes_no_map_and_bounds_every_model_call(pair, data, monkeypatch, name):
    from kerascnn.attributions import gradients, patches

    model, _ = pair
    x = data[0][:6]
    method = getattr(kc.attributions, name)
    default = method(model, x, **METHODS[name])
    assert default.shape == (6,) + SHAPE[:2] and default.dtype == np.float32
    sizes = []

    def spying(make):
        def spy(*args, **kwargs):
            fn = make(*args, **kwargs)
            return lambda images, *rest: (sizes.append(len(images)), fn(images, *rest))[1]
        return spy

    monkeypatch.setattr(gradients, "_gradient_fn", spying(gradients._gradient_fn))
    monkeypatch.setattr(gradients, "layer_gradient_fn", spying(gradients.layer_gradient_fn))
    real = patches.predict_logits
    monkeypatch.setattr(patches, "predict_logits", lambda m, images, batch_size=None: (
        sizes.append(len(images)), real(m, images, batch_size))[1])
    np.testing.assert_allclose(method(model, x, batch_size=1, **METHODS[name]), default, rtol=1e-4, atol=1e-5)
    assert sizes and max(sizes) == 1
    sizes.clear()
    method(model, x, batch_size=3, **METHODS[name])
    assert max(sizes) == 3


# ---------------------------------------------------------------------------- errors
def two_outputs():
    import keras

    inputs = keras.Input(SHAPE)
    flat = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, [keras.layers.Dense(K)(flat), keras.layers.Dense(2)(flat)])


BAD = [
    ("x", lambda m, x, y: kc.attacks.fgsm(m, x, y[:-1], 0.1), "y"),
    ("classes", lambda m, x, y: kc.attacks.pgd(m, x, y + K, 0.1), "y"),
    ("float labels", lambda m, x, y: kc.attacks.pgd(m, x, y + 0.5, 0.1), "y"),
    ("eps", lambda m, x, y: kc.attacks.pgd(m, x, y, -0.1), "eps"),
    ("eps text", lambda m, x, y: kc.attacks.square(m, x, y, "big"), "eps"),
    ("eps per image", lambda m, x, y: kc.attacks.fgsm(m, x, y, [0.1, 0.2]), "eps"),
    ("batch", lambda m, x, y: kc.attacks.apgd(m, x, y, 0.1, batch_size=0), "batch_size"),
    ("batch map", lambda m, x, y: kc.attributions.smoothgrad(m, x, batch_size=0), "batch_size"),
    ("batch float", lambda m, x, y: kc.attributions.saliency(m, x, batch_size=2.5), "batch_size"),
    ("two outputs", lambda m, x, y: kc.attacks.fgsm(two_outputs(), x, y, 0.1), "model"),
    ("not a model", lambda m, x, y: kc.attributions.gradcam("model.keras", x), "model"),
    ("shape", lambda m, x, y: kc.attacks.fab(m, x[:, :5], y, 0.1), "x"),
    ("one image", lambda m, x, y: kc.attributions.saliency(m, x[0]), "x"),
    ("range", lambda m, x, y: kc.attacks.fgsm(m, x * 255, y, 0.1), "x"),
    ("uint16", lambda m, x, y: kc.attacks.fgsm(m, (x * 1000).astype(np.uint16), y, 0.1), "x"),
    ("norm", lambda m, x, y: kc.attacks.autoattack(m, x, y, 0.1, norm="l1"), "norm"),
    ("loss", lambda m, x, y: kc.attacks.apgd(m, x, y, 0.1, loss="ce", target_classes=3), "loss"),
    ("version", lambda m, x, y: kc.attacks.autoattack(m, x, y, 0.1, version="fast"), "version"),
    ("target", lambda m, x, y: kc.attacks.minimal(m, x, target=K), "target"),
    ("input_range", lambda m, x, y: kc.attacks.pgd(m, x, y, 0.1, input_range=(1, 0)), "input_range"),
    ("input_range shape", lambda m, x, y: kc.attacks.pgd(m, x, y, 0.1, input_range=(0, 1, 2)), "input_range"),
    ("targets", lambda m, x, y: kc.attributions.integrated_gradients(m, x, y - 1), "targets"),
    ("layer", lambda m, x, y: kc.attributions.gradcam(m, x, layer="dense"), "layer"),
    ("patch", lambda m, x, y: kc.attributions.occlusion(m, x, patch=7), "patch"),
    ("samples", lambda m, x, y: kc.attributions.smoothgrad(m, x, samples=0), "samples"),
    ("baseline", lambda m, x, y: kc.attributions.integrated_gradients(m, x, baseline=2.0), "baseline"),
    ("seed", lambda m, x, y: kc.attacks.pgd(m, x, y, 0.1, seed=-1), "seed"),
]


@pytest.mark.parametrize("case, call, param", BAD, ids=[b[0] for b in BAD])
def test_a_bad_argument_is_one_bad_value_naming_it(pair, data, case, call, param):
    model, _ = pair
    x, y = data
    with pytest.raises(BadValue) as caught:
        call(model, x[:4], y[:4])
    assert caught.value.param == param, str(caught.value)
    if case == "range":
        assert "input_range" in str(caught.value)


def test_importing_the_namespaces_imports_no_tensorflow():
    code = ("import sys, kerascnn, kerascnn.attacks, kerascnn.attributions; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
