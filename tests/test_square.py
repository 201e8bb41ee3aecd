"""The Square Attack (attacks.square): never out of its ball or [0, 1] (linf and L2, one eps per
image, pixels at 0 and 1), only ever improving the margin, the reference's p schedule, its L2
pattern, and a weak linear model fooled at a generous eps; seeded; any input shape."""
import numpy as np
import pytest

from kerascnn.attacks.square_search import eta, p_selection, square, window
from kerascnn.errors import BadValue
from tests.test_robustness import images_of, tiny_model


def reference_p(it, queries, p_init=0.8):
    """fra31/auto-attack square.py p_selection, rescale_schedule=True, written out."""
    it = int(it / queries * 10000)
    if 10 < it <= 50:
        return p_init / 2
    for k, (low, high) in enumerate([(50, 200), (200, 500), (500, 1000), (1000, 2000), (2000, 4000), (4000, 6000),
                                     (6000, 8000)]):
        if low < it <= high:
            return p_init / 2 ** (k + 2)
    return p_init / 512 if it > 8000 else p_init


@pytest.mark.parametrize("queries", [5000, 1000, 37])
def test_p_schedule_matches_the_reference(queries):
    assert [p_selection(i, queries) for i in range(queries)] == [reference_p(i, queries) for i in range(queries)]


def test_l2_pattern_has_unit_norm_and_opposite_halves():
    for s in (3, 5, 9):
        pattern = eta(s)
        assert pattern.shape == (s, s) and np.sqrt((pattern ** 2).sum()) == pytest.approx(1, rel=1e-5)
        assert np.all(pattern[:s // 2] >= 0) and np.all(pattern[s // 2:] <= 0)
    assert window(0.8, (28, 28, 1), "linf") == 25 and window(0.001, (28, 28, 1), "l2") == 3


def margins(model, images, labels):
    z = model(images).numpy()
    own = z[np.arange(len(z)), labels]
    z[np.arange(len(z)), labels] = -np.inf
    return own - z.max(1)


@pytest.mark.parametrize("norm, eps", [("linf", 0.03), ("linf", 0.3), ("l2", 0.5), ("l2", 3.0)])
def test_never_leaves_its_ball_and_only_improves(norm, eps):
    model = tiny_model(seed=6)
    images = images_of((28, 28, 1), n=10, seed=1)
    images[:, :4] = 0.0
    images[:, -4:] = 1.0
    labels = model(images).numpy().argmax(1)
    radii = np.linspace(eps / 4, eps, 10).astype(np.float32)
    result = square(model, images, labels, radii, norm=norm, queries=150)
    delta = (result.images - images).reshape(10, -1)
    size = np.abs(delta).max(1) if norm == "linf" else np.sqrt((delta ** 2).sum(1))
    assert np.all(size <= radii * (1 + 1e-5) + 1e-6)
    assert result.images.min() >= 0 and result.images.max() <= 1 and result.within_ball().all()
    assert np.all(margins(model, result.images, labels) <= margins(model, images, labels) + 1e-4)
    np.testing.assert_array_equal(result.success, model(result.images).numpy().argmax(1) != labels)


def test_fools_a_weak_linear_model_and_is_seeded():
    model = tiny_model(seed=7, conv=False)
    images = images_of((28, 28, 1), n=20, seed=2)
    labels = model(images).numpy().argmax(1)
    result = square(model, images, labels, 0.3, queries=300, seed=1)
    assert result.success.mean() >= 0.9
    again = square(model, images, labels, 0.3, queries=300, seed=1)
    np.testing.assert_array_equal(result.images, again.images)
    other = square(model, images, labels, 0.05, queries=50, seed=2)
    assert not np.array_equal(other.images, square(model, images, labels, 0.05, queries=50, seed=3).images)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_any_shape_including_non_square_images(norm):
    model = tiny_model((12, 10, 3), classes=5, seed=4)
    images = images_of((12, 10, 3), n=6)
    labels = model(images).numpy().argmax(1)
    result = square(model, images, labels, 0.1 if norm == "linf" else 1.0, norm=norm, queries=60)
    assert result.images.shape == images.shape and result.within_ball().all()


@pytest.mark.parametrize("kwargs, param", [({"norm": "l1"}, "norm"), ({"queries": 0}, "queries"),
                                           ({"p_init": 0}, "p_init"), ({"p_init": 1.5}, "p_init"),
                                           ({"eps": -0.1}, "eps")])
def test_bad_values_name_their_parameter(kwargs, param):
    model = tiny_model(seed=5)
    args = {"eps": 0.1} | kwargs
    eps = args.pop("eps")
    with pytest.raises(BadValue) as error:
        square(model, images_of((28, 28, 1), n=2), [0, 1], eps, **args)
    assert error.value.param == param
