"""Minimal perturbations (FMN, attacks.minimal) against closed forms on linear models, the
`kerascnn attack minimal` command, and `attack noise --norm`."""
import json

import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.attacks.minimal_norm import minimal
from tests.support import cli, hand_softmax, load_model, written


def linear(w: np.ndarray, b: np.ndarray, side: int = 4):
    """A keras linear classifier on (side, side, 1) images with weights w (side*side, K) and biases b."""
    import keras

    inputs = keras.Input((side, side, 1))
    model = keras.Model(inputs, keras.layers.Dense(len(b))(keras.layers.Flatten()(inputs)))
    model.layers[-1].set_weights([w.astype(np.float32), b.astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def three_classes():
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 1, (16, 3)), rng.normal(0, 0.1, 3)
    x = (0.5 + rng.uniform(-0.05, 0.05, (24, 4, 4, 1))).astype(np.float32)
    return linear(w, b), w, b, x


@pytest.mark.parametrize("norm, dual", [("l2", 2), ("linf", 1)])
def test_exact_distance_to_the_nearest_boundary_of_a_linear_model(three_classes, norm, dual):
    """min_j |z_i - z_j| / ||w_i - w_j||_dual: the distance to the union of the half-spaces z_j > z_i."""
    model, w, b, x = three_classes
    z = x.reshape(len(x), -1).astype(np.float64) @ w + b
    y = z.argmax(axis=1)
    exact = np.array([min(abs(z[n, y[n]] - z[n, j]) / np.linalg.norm(w[:, y[n]] - w[:, j], ord=dual)
                          for j in range(3) if j != y[n]) for n in range(len(x))])
    result = minimal(model, x, y, norm=norm, steps=100)
    assert result.success.all()
    np.testing.assert_allclose(result.distance, exact, rtol=2e-3)
    assert result.images.min() >= 0 and result.images.max() <= 1


def test_a_confidence_goal_has_its_own_closed_form():
    """Two classes: P(t) >= c exactly when z_t - z_o >= log(c / (1 - c))."""
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (64, 2))
    b = np.array([0.0, -0.5 * (w[:, 1] - w[:, 0]).sum()])  # the classes tie at grey: the box never binds
    x = (0.5 + rng.uniform(-0.02, 0.02, (10, 8, 8, 1))).astype(np.float32)
    z = x.reshape(10, -1).astype(np.float64) @ w + b
    c = 0.9
    need = np.log(c / (1 - c)) - (z[:, 1] - z[:, 0])
    exact = np.maximum(need, 0) / np.linalg.norm(w[:, 1] - w[:, 0])
    model = linear(w, b, side=8)
    result = minimal(model, x, norm="l2", target=1, confidence=c, steps=100)
    p = hand_softmax(model(result.images).numpy())
    assert np.all(p[:, 1] >= c) and result.success.all()
    np.testing.assert_allclose(result.distance, exact, rtol=2e-3, atol=1e-6)


def test_images_already_misclassified_need_nothing(three_classes):
    model, _, _, x = three_classes
    wrong = (model(x).numpy().argmax(axis=1) + 1) % 3
    result = minimal(model, x, wrong, steps=5)
    assert np.all(result.distance == 0)


@pytest.mark.parametrize("goal", ["untargeted", "target", "confidence"])
def test_images_that_meet_the_goal_clean_skip_the_steps_and_the_others_are_unchanged(three_classes, goal, monkeypatch):
    """FMN stores an image that meets its goal clean at its first step, norm 0, and nothing replaces it:
    such images no longer enter the compiled loop. The others get what they get run on their own."""
    from kerascnn.attacks import minimal_norm

    _, w, b, _ = three_classes
    model = linear(w, b)  # a fresh model: its own compiled loop, which the spy below wraps
    x = np.random.default_rng(5).uniform(0, 1, (24, 4, 4, 1)).astype(np.float32)  # several classes
    z = x.reshape(len(x), -1).astype(np.float64) @ w + b
    clean = z.argmax(axis=1)
    common = int(np.bincount(clean).argmax())
    kwargs = {"untargeted": {}, "target": {"target": common},
              "confidence": {"target": common, "confidence": 0.8}}[goal]
    labels = clean.copy()
    if goal == "untargeted":
        labels[::3] = (clean[::3] + 1) % 3  # every third image is wrong from the start
        met = labels != clean
    elif goal == "target":
        met = clean == common
    else:  # P(target) >= 0.8 is more than predicting it
        met = hand_softmax(z)[:, common] > 0.8
    assert 0 < met.sum() < len(x)
    seen = []
    original = minimal_norm._compile

    def spying(*args):
        run = original(*args)
        return lambda images, *rest: (seen.append(len(images)), run(images, *rest))[1]

    monkeypatch.setattr(minimal_norm, "_compile", spying)
    result = minimal(model, x, None if goal != "untargeted" else labels, steps=20, **kwargs)
    assert sum(seen) == (~met).sum()
    assert np.array_equal(result.images[met], x[met]) and np.all(result.distance[met] == 0)
    alone = minimal(linear(w, b), x[~met], None if goal != "untargeted" else labels[~met], steps=20, **kwargs)
    assert np.array_equal(result.images[~met], alone.images)


@pytest.mark.parametrize("kwargs", [{}, {"target": 2, "confidence": 0.7}])
def test_the_bisection_takes_one_forward_pass_a_halving_and_matches_two(three_classes, kwargs, monkeypatch):
    """Each halving asks the model once: both verdicts (the goal met as re-predicted, and clearly past
    the boundary) come from the same logits, bit-equal to asking twice as it used to."""
    from kerascnn.attacks import minimal_norm
    from kerascnn.attacks.loop import predict_proba
    from kerascnn.model.predict import predict_logits

    model, _, _, x = three_classes
    targeted, goal = "target" in kwargs, np.full(len(x), 2) if "target" in kwargs else model(x).numpy().argmax(1)
    odds = (1 - kwargs["confidence"]) / kwargs["confidence"] if kwargs else 0.0
    best = np.clip(x + np.random.default_rng(3).normal(0, 0.4, x.shape), 0, 1).astype(np.float32)
    calls = []
    monkeypatch.setattr(minimal_norm, "predict_logits", lambda *a, **k: (calls.append(len(a[1])), predict_logits(*a, **k))[1])
    ours = minimal_norm._bisect(model, x, best, goal, targeted, odds)
    monkeypatch.undo()
    assert calls == [len(x)] * (1 + minimal_norm.BISECTION_STEPS)   # the first verdict, then one pass a halving

    def met(images):  # the verdict as the old code asked it: re-predicted probabilities, a pass of their own
        p = predict_proba(model, images)
        hit = p.argmax(axis=1) == goal
        return (hit & (p[np.arange(len(goal)), goal] >= 1.0 / (1.0 + odds)) if odds > 0 else hit) if targeted else ~hit

    delta, low = best - x, np.zeros(len(x), np.float32)  # the two-pass bisection, written out
    high = np.where(met(best), 1.0, np.nan).astype(np.float32)
    ok = ~np.isnan(high)
    assert 0 < ok.sum() < len(x)
    for _ in range(minimal_norm.BISECTION_STEPS):
        middle = (low + np.nan_to_num(high, nan=1.0)) / 2
        moved = x + middle[:, None, None, None] * delta
        meets = met(moved) & minimal_norm._clearly_met(predict_logits(model, moved), goal, targeted, 0.0)
        high, low = np.where(ok & meets, middle, high), np.where(ok & ~meets, middle, low)
    scale = np.where(ok, np.nan_to_num(high, nan=1.0), 1.0)[:, None, None, None]
    np.testing.assert_array_equal(ours, np.clip(x + scale * delta, 0.0, 1.0).astype(np.float32))


@pytest.mark.parametrize("kwargs, param", [({"norm": "l1"}, "norm"), ({"steps": 0}, "steps"),
                                           ({"target": 3}, "target"), ({"confidence": 0.9}, "confidence")])
def test_bad_values_name_their_parameter(three_classes, kwargs, param):
    model, _, _, x = three_classes
    with pytest.raises(BadValue) as error:
        minimal(model, x, **kwargs)
    assert error.value.param == param


# ---------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from kerascnn.outputs import store
    from tests.test_robustness import tiny_model

    path = tmp_path_factory.mktemp("minimal") / "tiny.keras"
    store.save_model(tiny_model(seed=2), path)
    return path


def test_minimal_command(model_path, idx_dir, tmp_path):
    out = tmp_path / "m"
    result = cli("attack", "minimal", "--model", model_path, "--data-dir", idx_dir, "--count", 12, "--steps", 40,
                 "--norm", "linf", "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"norms.png", "examples.png", "images.npy", "originals.npy", "result.json"}
    data = json.loads((out / "result.json").read_text())
    images, originals = np.load(out / "images.npy"), np.load(out / "originals.npy")
    linf = np.abs(images - originals).reshape(12, -1).max(axis=1)
    found = np.array([d is not None for d in data["distance"]])
    np.testing.assert_allclose(np.array(data["distance"], dtype=float)[found], linf[found], rtol=1e-5)
    predicted = load_model(model_path)(images).numpy().argmax(axis=1)
    assert np.all(predicted[found] != np.array(data["labels"])[found])
    assert data["median"] == pytest.approx(float(np.median(np.where(found, linf, np.inf))))


def test_a_target_outside_the_classes_is_refused(model_path, idx_dir, tmp_path):
    result = cli("attack", "minimal", "--model", model_path, "--data-dir", idx_dir, "--target", 12,
                 "--out", tmp_path / "o")
    assert result.exit_code == 2 and "--target" in result.output and len(result.output.strip().splitlines()) == 1


def test_noise_norm_l2_reaches_the_goal_with_less_l2_than_sign_steps(model_path, idx_dir, tmp_path):
    runs = {}
    for mode in ([], ["--norm", "l2"]):
        out = tmp_path / ("l2" if mode else "sign")
        result = cli("attack", "noise", "--model", model_path, "--data-dir", idx_dir, "--target", 3, "--count", 3,
                     "--confidence", 0.6, "--universal", 0, "--steps", 200, *mode, "--out", out)
        assert result.exit_code == 0, result.output
        runs[bool(mode)] = json.loads((out / "result.json").read_text())["results"]
    sign, small = runs[False], runs[True]
    assert all(r["success"] for r in small) and all(r["target_probability"] >= 0.6 for r in small)
    for a, b in zip(sign, small):
        if a["success"]:
            assert b["l2"] <= a["l2"] * 1.001


def test_the_summary_says_so_when_nothing_was_found():
    """Nothing found for any image: the medians are infinite, and the sentence says so instead of 'nan'."""
    from kerascnn.attacks.bounded_results import MinimalResult
    from kerascnn.experiments import minimal

    originals = np.zeros((3, 4, 4, 1), np.float32)
    probs = np.tile([[0.9, 0.05, 0.05]], (3, 1))
    attack = MinimalResult("l2", originals, originals.copy(), np.zeros(3, np.int64), None, None, probs, probs, 0.1, {})
    result = minimal.Result(attack, np.arange(3), np.zeros(3, np.int64), "m", ("a", "b", "c"))
    text = minimal.summary(result)
    assert "nan" not in text and "no perturbation" in text and "for 3 none was found" in text
