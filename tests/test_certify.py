"""Randomized smoothing (certify.smoothing) against closed forms: on a linear two-class model the
probability of the top class under Gaussian noise is Phi(d / sigma), d the distance to the boundary,
so the certified radius sigma * Phi^-1(pA) approaches d from below; the Clopper-Pearson bound
against SciPy's exact binomial interval; an abstention where the two top classes tie; counts that
add up, are seeded, and do not depend on the batch."""
import numpy as np
import pytest
from scipy.stats import binomtest, norm

from kerascnn.smoothing import cohen as smoothing
from kerascnn.errors import BadValue


def linear_two_class(size=6, seed=0):
    """logits (0, w.x + b): class 1 wherever w.x + b > 0; the boundary is the hyperplane w.x + b = 0."""
    import keras

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, size * size).astype(np.float32)
    b = np.float32(-w.sum() / 2)  # the grey image lies on the boundary
    inputs = keras.Input((size, size, 1))
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([np.stack([np.zeros_like(w), w], axis=1), np.array([0.0, b], np.float32)])
    return model, w, b


def test_probability_and_radius_follow_the_closed_form():
    model, w, b = linear_two_class()
    rng = np.random.default_rng(1)
    images = rng.uniform(0.3, 0.7, (6, 6, 6, 1)).astype(np.float32)
    margin = images.reshape(6, -1) @ w + b
    distance = np.abs(margin) / np.linalg.norm(w)
    sigma, n = 0.25, 20_000
    result = smoothing.certify(model, images, sigma, n0=100, n=n, alpha=0.001, seed=3)
    top = (margin > 0).astype(int)
    p_true = norm.cdf(distance / sigma)
    p_hat = result["counts"][np.arange(6), top] / n
    assert np.all(np.abs(p_hat - p_true) <= 4 * np.sqrt(p_true * (1 - p_true) / n) + 1e-3)
    certified = result["prediction"] != smoothing.ABSTAIN
    np.testing.assert_array_equal(result["prediction"][certified], top[certified])
    # the radius never exceeds the true distance to the boundary, and comes close to it
    assert np.all(result["radius"] <= distance + 1e-6)
    near = certified & (p_true < 0.999)
    assert near.any() and np.all(result["radius"][near] >= distance[near] - 0.1 * sigma)
    assert np.all(result["radius"][~certified] == 0)


@pytest.mark.parametrize("k, n, alpha", [(0, 100, 0.001), (1, 100, 0.01), (50, 100, 0.001), (99, 100, 0.05),
                                         (100, 100, 0.001), (9_990, 10_000, 0.001)])
def test_clopper_pearson_matches_scipy_exact_interval(k, n, alpha):
    lower = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
    assert smoothing.lower_confidence_bound(k, n, alpha) == pytest.approx(lower, abs=1e-9)


def test_a_tie_abstains():
    """On the boundary (the grey image) the two classes are equally likely: PREDICT abstains and
    CERTIFY cannot bound pA above 1/2."""
    model, w, b = linear_two_class()
    grey = np.full((3, 6, 6, 1), 0.5, np.float32)
    assert np.all(smoothing.predict(model, grey, 0.5, n=2_000, alpha=0.001) == smoothing.ABSTAIN)
    result = smoothing.certify(model, grey, 0.5, n0=100, n=2_000, alpha=0.001)
    assert np.all(result["prediction"] == smoothing.ABSTAIN) and np.all(result["radius"] == 0)
    far = np.full((2, 6, 6, 1), 0.5, np.float32) + 2.0 * np.sign(w).reshape(1, 6, 6, 1)
    assert np.all(smoothing.predict(model, far, 0.25, n=500) == 1)


def test_counts_add_up_are_seeded_and_do_not_depend_on_the_batch():
    model, _, _ = linear_two_class()
    images = np.random.default_rng(2).uniform(0, 1, (5, 6, 6, 1)).astype(np.float32)
    one = smoothing.counts(model, images, 300, 0.3, seed=4)
    assert one.shape == (5, 2) and np.all(one.sum(axis=1) == 300)
    np.testing.assert_array_equal(one, smoothing.counts(model, images, 300, 0.3, seed=4))
    assert not np.array_equal(one, smoothing.counts(model, images, 300, 0.3, seed=5))
    for batch in (7, 64, 2_000):  # one image at a time in chunks, or many images a call: same law
        other = smoothing.counts(model, images, 300, 0.3, seed=4, batch_size=batch)
        assert other.shape == (5, 2) and np.all(other.sum(axis=1) == 300)


def test_bf16_samples_through_a_bfloat16_copy_of_the_model_with_the_same_noise():
    """precision="bf16": the model's mixed_bfloat16 copy (its logits are w.x + b to bfloat16's 8 bits)
    classifies the same noisy images, so far from the boundary the counts are fp32's, and they are
    exactly those of the copy run in fp32 mode; the model itself is not changed."""
    from kerascnn.model.twin import bfloat16_twin

    model, w, b = linear_two_class()
    images = np.random.default_rng(2).uniform(0, 1, (4, 6, 6, 1)).astype(np.float32)
    twin = bfloat16_twin(model)
    logits = np.asarray(twin(images), np.float64)
    assert twin(images).dtype.name == "bfloat16" and model(images).dtype.name == "float32"
    np.testing.assert_allclose(logits[:, 1], images.reshape(4, -1) @ w + b, atol=0.05 * np.abs(w).sum())
    half = smoothing.counts(model, images, 400, 0.3, seed=4, precision="bf16")
    np.testing.assert_array_equal(half, smoothing.counts(twin, images, 400, 0.3, seed=4))
    full = smoothing.counts(model, images, 400, 0.3, seed=4)
    assert np.all(half.sum(axis=1) == 400) and np.abs(half - full).max() <= 8  # only boundary samples differ
    far = np.full((2, 6, 6, 1), 0.5, np.float32) + 2.0 * np.sign(w).reshape(1, 6, 6, 1)
    np.testing.assert_array_equal(smoothing.counts(model, far, 300, 0.25, precision="bf16"), [[0, 300]] * 2)
    with pytest.raises(BadValue) as error:
        smoothing.counts(model, images, 10, 0.3, precision="fp16")
    assert error.value.param == "precision"


@pytest.mark.parametrize("kwargs, param", [({"sigma": 0}, "sigma"), ({"sigma": -1}, "sigma"), ({"n": 50}, "n"),
                                           ({"n0": 0}, "n0"), ({"alpha": 0}, "alpha"), ({"alpha": 1.5}, "alpha")])
def test_bad_settings_name_their_parameter(kwargs, param):
    model, _, _ = linear_two_class()
    args = {"sigma": 0.25, "n0": 100, "n": 1_000, "alpha": 0.001} | kwargs
    with pytest.raises(BadValue) as error:
        smoothing.certify(model, np.zeros((1, 6, 6, 1), np.float32), args.pop("sigma"), **args)
    assert error.value.param == param


# ---------------------------------------------------------------------------- the command
def test_certify_command_writes_a_curve_whose_numbers_recompute(tmp_path, idx_dir, tiny_model_path):
    import json

    from tests.support import cli, written

    out = tmp_path / "c"
    result = cli("certify", "--model", tiny_model_path, "--data-dir", idx_dir, "--count", 12, "--n0", 20, "--n", 200,
                 "--sigma", 0.1, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"certify.png", "result.json"}
    data = json.loads((out / "result.json").read_text())
    prediction, labels, radius = (np.array(data[k]) for k in ("prediction", "labels", "radius"))
    for r, accuracy in data["certified_accuracy"].items():
        assert accuracy == pytest.approx(np.mean((prediction == labels) & (radius >= float(r))))
    # a radius only where a class was certified, sigma * Phi^-1 of its bound
    p_lower = np.array(data["p_lower"])
    certified = prediction != smoothing.ABSTAIN
    np.testing.assert_allclose(radius[certified], 0.1 * norm.ppf(p_lower[certified]), atol=1e-5)
    assert np.all(radius[~certified] == 0) and data["abstained"] == pytest.approx(np.mean(~certified))


@pytest.mark.parametrize("args, option", [(["--sigma", 0], "--sigma"), (["--sigma", -0.5], "--sigma"),
                                          (["--n0", 100, "--n", 50], "--n"), (["--alpha", 0], "--alpha"),
                                          (["--alpha", 1.5], "--alpha"), (["--count", 20000], "--count"),
                                          (["--attack", "--attack-steps", 0], "--attack-steps"),
                                          (["--attack", "--attack-samples", 0], "--attack-samples")])
def test_bad_values_are_one_line_exit_2(args, option, tmp_path, idx_dir, tiny_model_path):
    from tests.support import assert_one_line_error, cli

    result = cli("certify", "--model", tiny_model_path, "--data-dir", idx_dir, *args, "--out", tmp_path / "o")
    assert_one_line_error(result, option, 2)
    assert not (tmp_path / "o").exists()


def test_no_certificate_breaks_under_attack_and_the_attack_crosses_where_it_can():
    """On a linear model the smoothed classifier is the linear model itself (closed form), so an
    attack within the certified radius (<= the distance to the boundary) cannot change it, and one
    allowed twice the distance does."""
    from kerascnn.experiments.certify import Options, attack_at_radius

    model, w, b = linear_two_class()
    rng = np.random.default_rng(5)
    images = rng.uniform(0.35, 0.65, (6, 6, 6, 1)).astype(np.float32)
    distance = np.abs(images.reshape(6, -1) @ w + b) / np.linalg.norm(w)
    options = Options(sigma=0.25, n0=50, n=2_000, alpha=0.001)
    found = smoothing.certify(model, images, 0.25, n0=50, n=2_000, alpha=0.001)
    prediction, radius = found["prediction"], found["radius"]
    assert np.sum(radius > 0) >= 3
    after, moved = attack_at_radius(model, images, prediction, radius, options)
    certified = radius > 0
    assert np.all(moved[certified] <= radius[certified] + 1e-5)
    # nothing broken: the same class, or an abstention where the attack reached near the boundary
    assert np.all(np.isin(after[certified] - prediction[certified], [0])
                  | (after[certified] == smoothing.ABSTAIN))
    # allowed twice the distance, the attack crosses the boundary where the [0, 1] box lets it, and the
    # smoothed class follows the closed form wherever the new point is not too close to the boundary
    from kerascnn.attacks.auto_pgd import apgd
    from kerascnn.smoothing.cohen import soft_smoothed

    found = apgd(soft_smoothed(model, 0.25), images[certified], prediction[certified], 2 * distance[certified],
                 norm="l2", best_loss=True, batch_size=64)
    margin = found.images.reshape(len(found.images), -1) @ w + b
    side = (margin > 0).astype(int)
    assert np.mean(side != prediction[certified]) >= 0.5
    clear = np.abs(margin) / np.linalg.norm(w) > 0.25
    after = smoothing.predict(model, found.images, 0.25, n=2_000, alpha=0.001)
    np.testing.assert_array_equal(after[clear], side[clear])


def test_the_attacks_budget_reaches_apgd_and_the_record(monkeypatch, idx_dir, tiny_model_path):
    """attack_steps and attack_samples (what the report lowers for a model of real size, where the
    default 100 x 32 gradients an image take a minute) are the steps APGD takes and the draws each
    gradient averages, and result.json and the summary say which were used; below 1 is one BadValue."""
    import kerascnn as kc
    from kerascnn.attacks import auto_pgd
    from kerascnn.errors import BadValue
    from kerascnn.smoothing import cohen

    seen = {}
    real_apgd, real_soft = auto_pgd.apgd, cohen.soft_smoothed

    def spy_apgd(model, *args, **kwargs):
        seen["steps"] = kwargs["steps"]
        return real_apgd(model, *args, **kwargs)

    def spy_soft(model, sigma, samples=32):
        seen["samples"] = samples
        return real_soft(model, sigma, samples)

    monkeypatch.setattr(auto_pgd, "apgd", spy_apgd)
    monkeypatch.setattr(cohen, "soft_smoothed", spy_soft)
    result = kc.certify(tiny_model_path, idx_dir, count=6, n0=20, n=100, sigma=0.1, attack=True, attack_steps=7,
                        attack_samples=3, progress=False)
    assert np.any(result.raw.radius > 0)  # something to attack
    assert seen == {"steps": 7, "samples": 3}
    attack = result.raw.to_dict()["attack"]
    assert (attack["steps"], attack["samples"]) == (7, 3) and "7 steps" in attack["method"]
    with pytest.raises(BadValue) as caught:
        kc.certify(tiny_model_path, idx_dir, count=6, attack=True, attack_samples=0, progress=False)
    assert caught.value.param == "attack_samples"
