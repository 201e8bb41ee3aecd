"""Figures whose numbers a setting bounds say so on the figure (issue 37): the certified radius at the
cap that n puts on it, and an accuracy of 0% where eps reaches the whole pixel range. The cap is
checked against its closed form, sigma * Phi^-1(alpha^(1/n)), and against certify itself on a model
whose every noisy sample agrees."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.stats import norm

from kerascnn.plots import robustness as plots
from kerascnn.smoothing import cohen


def _vertical_lines(ax) -> list[float]:
    return [line.get_xdata()[0] for line in ax.get_lines() if len(set(line.get_xdata())) == 1]


@pytest.mark.parametrize("sigma, n, alpha", [(0.25, 500, 0.001), (0.5, 10_000, 0.001), (0.12, 100, 0.05)])
def test_the_cap_is_the_closed_form(sigma, n, alpha):
    assert cohen.largest_radius(sigma, n, alpha) == pytest.approx(sigma * norm.ppf(alpha ** (1 / n)), rel=1e-9)


def test_certify_reaches_the_cap_exactly_when_every_sample_agrees():
    """A model that says class 2 whatever the noise: every radius is the cap, none above it."""
    import keras

    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(3, kernel_initializer="zeros",
                                                   bias_initializer=keras.initializers.Constant([0, 0, 5]))(
        keras.layers.Flatten()(inputs)))
    images = np.random.default_rng(0).random((3, 4, 4, 1), np.float32)
    found = cohen.certify(model, images, 0.25, n0=10, n=200, alpha=0.001)
    assert np.all(found["prediction"] == 2)
    np.testing.assert_allclose(found["radius"], 0.25 * norm.ppf(0.001 ** (1 / 200)), rtol=1e-9)


def test_the_certified_figure_draws_the_cap_as_a_labelled_line_and_counts_the_images_there():
    cap = 0.25 * norm.ppf(0.001 ** (1 / 500))
    radius = np.array([cap, cap, cap, 0.2, 0.0])
    fig = plots.certified_curve(radius, np.array([True, True, False, True, False]), 0.2, "t", cap=cap, n=500)
    try:
        ax = fig.axes[0]
        assert cap in [pytest.approx(x) for x in _vertical_lines(ax)]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("n = 500 caps the radius at 0.551" in t and "3 of 5 images" in t for t in labels), labels
        assert ax.get_xlim()[1] > cap  # the cap and the stretch beyond it are on the figure
    finally:
        plt.close(fig)


def test_without_a_cap_the_figure_is_as_before():
    fig = plots.certified_curve(np.array([0.3, 0.1]), np.array([True, True]), 0.0, "t")
    try:
        assert _vertical_lines(fig.axes[0]) == [] and len(fig.axes[0].get_legend().get_texts()) == 1
    finally:
        plt.close(fig)


def test_radius_against_minimal_draws_the_cap_too():
    cap = 0.55
    fig = plots.radius_against_minimal(np.array([cap, 0.3]), np.array([1.0, 0.8]), np.array([True, True]), "t",
                                       cap=cap, n=500)
    try:
        assert cap in [pytest.approx(x) for x in _vertical_lines(fig.axes[0])]
        assert any("1 of 2 images" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    finally:
        plt.close(fig)


@pytest.mark.parametrize("norm_name, pixels, eps, marked_at", [
    ("linf", None, [0, 0.1, 0.3, 1.0], 1.0),    # linf: a change of 1 per pixel reaches every image in [0, 1]
    ("linf", None, [0, 0.1, 0.3], None),        # the usual ladder: nothing to mark
    ("l2", 784, [0, 1, 2, 3], None),            # L2 on 28x28: the whole range is sqrt(784) = 28 away
    ("l2", 4, [0, 1, 2, 3], 2.0),               # four pixels: sqrt(4) = 2
    ("l2", None, [0, 30.0], None),              # L2 with the image size unknown: nothing claimed
])
def test_an_eps_that_reaches_the_pixel_range_is_marked(norm_name, pixels, eps, marked_at):
    curves = [{"label": "PGD", "eps": eps, "accuracy": [1.0] + [0.0] * (len(eps) - 1), "clean": 1.0, "model": "m"}]
    fig = plots.robustness_curves(curves, "t", norm_name, pixels=pixels)
    try:
        ax = fig.axes[0]
        notes = [t.get_text() for t in ax.texts if "pixel range" in t.get_text()]
        if marked_at is None:
            assert _vertical_lines(ax) == [] and notes == []
        else:
            assert _vertical_lines(ax) == [pytest.approx(marked_at)]
            assert len(notes) == 1 and "0%" in notes[0] and "forced" in notes[0]
    finally:
        plt.close(fig)
