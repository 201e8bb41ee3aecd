"""Deletion and insertion curves against copies built by hand, the Spearman correlation against the
textbook formula, the cascading re-initialisation, and what chance looks like: a random map, or a
model with random weights, gains nothing over a random pixel order."""
import numpy as np
import pytest

from kerascnn.attributions import faithfulness
from kerascnn.experiments import faithfulness as experiment
from tests.support import hand_softmax, probabilities

SHAPE = (6, 5, 2)


@pytest.fixture(scope="module")
def linear():
    import keras

    rng = np.random.default_rng(0)
    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    model.layers[-1].set_weights([rng.normal(0, 1.0, (60, 3)).astype(np.float32), np.zeros(3, np.float32)])
    return model


def test_curves_follow_p_of_the_target_on_copies_built_by_hand(linear):
    rng = np.random.default_rng(1)
    x = rng.random((2,) + SHAPE).astype(np.float32)
    targets = np.array([1, 2])
    pixels = SHAPE[0] * SHAPE[1]
    orders = {"a": np.stack([rng.permutation(pixels) for _ in range(2)]),
              "b": np.stack([np.arange(pixels)] * 2)}
    deletion, insertion = faithfulness.curves(linear, x, targets, orders, steps=4)
    counts = [0, 8, 15, 22, 30]   # round(s / 4 * 30): halves round to even
    assert faithfulness.chunk_counts(pixels, 4).tolist() == counts
    for name, order in orders.items():
        for i in range(2):
            removed = [np.isin(np.arange(pixels), order[i][:n]).reshape(SHAPE[:2] + (1,)) for n in counts]
            deleted = np.stack([np.where(m, 0.0, x[i]) for m in removed])
            inserted = np.stack([np.where(m, x[i], 0.0) for m in removed])
            np.testing.assert_allclose(deletion[name][i], probabilities(linear, deleted)[:, targets[i]], atol=1e-6)
            np.testing.assert_allclose(insertion[name][i], probabilities(linear, inserted)[:, targets[i]], atol=1e-6)
    clean = probabilities(linear, x)[[0, 1], targets]
    black = hand_softmax(np.zeros(3))[0]   # zero bias: a black image is uniform
    for name in orders:   # deletion starts, and insertion ends, at the model's clean probability
        np.testing.assert_allclose(deletion[name][:, 0], clean, atol=1e-6)
        np.testing.assert_allclose(insertion[name][:, -1], clean, atol=1e-6)
        np.testing.assert_allclose(deletion[name][:, -1], black, atol=1e-6)


def test_area_is_the_trapezoid_rule():
    assert faithfulness.area(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert faithfulness.area(np.array([0.0, 1.0, 1.0, 1.0, 1.0])) == pytest.approx(0.875)


def test_ties_are_ordered_at_random_not_by_position():
    rng = np.random.default_rng(0)
    firsts = {int(faithfulness.pixel_order(np.array([0.0, 2.0, 0.0, 0.0, 1.0]), rng)[2]) for _ in range(40)}
    orders = faithfulness.pixel_order(np.array([0.0, 2.0, 0.0, 0.0, 1.0]), rng)
    assert orders[:2].tolist() == [1, 4] and firsts == {0, 2, 3}


def test_spearman_against_the_textbook_formula():
    rng = np.random.default_rng(2)
    a, b = rng.random((3, 50)), rng.random((3, 50))
    d = faithfulness.ranks(a) - faithfulness.ranks(b)
    expected = 1 - 6 * (d ** 2).sum(axis=1) / (50 * (50 ** 2 - 1))   # exact without ties
    np.testing.assert_allclose(faithfulness.spearman(a, b), expected, atol=1e-12)
    assert faithfulness.ranks(np.array([5.0, 1.0, 5.0, 3.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    tied = np.corrcoef([3.5, 1.0, 3.5, 2.0], [1, 2, 3, 4])[0, 1]   # Pearson of the mean ranks
    assert faithfulness.spearman(np.array([5.0, 1.0, 5.0, 3.0]), np.arange(4.0)) == pytest.approx(tied)
    assert faithfulness.spearman(np.ones(5), np.arange(5.0)) == 0.0


def test_layers_are_reinitialised_from_the_top_cumulatively_and_the_model_is_untouched():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE)
    x = keras.layers.Conv2D(3, 3, name="low")(inputs)
    x = keras.layers.Dense(4, name="mid")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Dense(2, name="top")(x))
    original = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}
    seen = []
    for name, copy in faithfulness.randomised_models(model, seed=1):
        seen.append(name)
        for layer, weights in original.items():
            changed = not all(np.array_equal(a, b) for a, b in zip(copy.get_layer(layer).get_weights(), weights))
            assert changed == (layer in seen), (name, layer)
    assert seen == ["top", "mid", "low"]
    for layer, weights in original.items():
        for a, b in zip(model.get_layer(layer).get_weights(), weights):
            np.testing.assert_array_equal(a, b)


def test_a_random_map_gains_nothing_over_a_random_order(linear):
    rng = np.random.default_rng(3)
    x = rng.random((60,) + SHAPE).astype(np.float32)
    targets = probabilities(linear, x).argmax(axis=1)
    pixels = SHAPE[0] * SHAPE[1]
    maps = rng.normal(size=(60,) + SHAPE[:2])
    orders = {"noise": np.stack([faithfulness.pixel_order(m, rng) for m in maps]),
              "random": np.stack([rng.permutation(pixels) for _ in range(60)])}
    deletion, insertion = faithfulness.curves(linear, x, targets, orders, steps=10)
    for curves in (deletion, insertion):
        gain = faithfulness.area(curves["noise"]) - faithfulness.area(curves["random"])
        assert abs(gain.mean()) < 3 * gain.std() / np.sqrt(60) + 0.01


def test_a_model_with_random_weights_gives_near_zero_advantage(idx_dir, tiny_model_path):
    """The tiny fixture model is the network with its random initial weights: whatever the map, P
    barely moves as pixels go, so no method beats the random order by much."""
    from kerascnn.attributions.gradients import Settings
    from kerascnn.model.subject import Subject
    from kerascnn.data.tasks import Task

    subject = Subject.load(tiny_model_path, Task(data_dir=str(idx_dir)))
    result = experiment.run(subject, experiment.Options(count=20, steps=10, randomise=0,
                                                        settings=Settings(ig_steps=8, smoothgrad_samples=4)))
    for m in result.methods:
        assert abs(result.gain("deletion", m).mean()) < 0.02 and abs(result.gain("insertion", m).mean()) < 0.02, m
    assert result.correlation == {} and set(experiment.figures(result)) == {"faithfulness.png"}
