"""Figures drawn from stand-in results (no model, no experiment module): class names reach the text,
RGB images are drawn in colour, and the figure fixes of issue 15 hold. Each case also runs on
greyscale 28x28 images with class numbers, the MNIST look."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.image import AxesImage
from matplotlib.text import Text

from kerascnn import plots

NAMES = ("cat", "dog", "bird", "fish", "frog")
LONG = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
RGB, GREY = (32, 32, 3), (28, 28, 1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def texts(fig) -> list[str]:
    """Every piece of text in the figure: titles, suptitles, tick labels, legends, annotations."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def joined(fig) -> str:
    return "\n".join(texts(fig))


def images_of(fig) -> list[np.ndarray]:
    return [np.asarray(im.get_array()) for im in fig.findobj(AxesImage)]


def pictures(n: int, shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def softmax_rows(predicted, k: int, p: float = 0.9) -> np.ndarray:
    out = np.full((len(predicted), k), (1 - p) / (k - 1))
    out[np.arange(len(predicted)), predicted] = p
    return out


# ---------------------------------------------------------------------------- stand-in results
def occlusion(shape, patch: int, stride: int, names, thumbnails: bool = True):
    """An OcclusionResult's attributes: following class 1, every third position predicted 2."""
    h, w, _ = shape
    offsets_r, offsets_c = np.arange(0, h - patch + 1, stride), np.arange(0, w - patch + 1, stride)
    rows, cols = [a.ravel() for a in np.meshgrid(offsets_r, offsets_c, indexing="ij")]
    probabilities = softmax_rows(np.where(np.arange(len(rows)) % 3 == 0, 2, 1), len(names) if names else 10)
    image = pictures(1, shape)[0]
    grid = (len(offsets_r), len(offsets_c))
    images = np.repeat(image[None], len(rows) if thumbnails else 1, axis=0)
    return SimpleNamespace(
        image=image, images=images, copy=lambda p: images[p], rows=rows, cols=cols,
        probabilities=probabilities, label=1, patch=patch, stride=stride, fill=0.5, label_source="true label",
        class_names=names, count=len(rows), grid_shape=grid, prob_true=probabilities[:, 1],
        pred=probabilities.argmax(axis=1), prob_pred=probabilities.max(axis=1), clean_pred=1, clean_prob_true=0.9,
        prob_true_grid=lambda: probabilities[:, 1].reshape(grid))


def attack(shape, names, targeted: bool = False):
    """An AttackResult's attributes: one image per class, the attack on class 1 fails."""
    k = len(names) if names else 10
    targets = np.arange(k)
    predicted = np.where(targets == 1, 0, targets)
    images, guide = pictures(k, shape), pictures(1, shape, 1)[0] if targeted else None
    return SimpleNamespace(
        images=images, targets=targets, probabilities=softmax_rows(predicted, k), predicted=predicted,
        probability=np.full(k, 0.9), success=predicted == targets, settings={"clip": True, "beta": 0.1},
        confidence=0.9, guide=guide, class_names=names,
        mse=None if guide is None else np.mean((images - guide) ** 2, axis=(1, 2, 3)))


def noise(shape, names):
    k = len(names) if names else 10
    originals = pictures(2, shape)
    delta = (pictures(2, shape, 1) - 0.5) * 0.2
    predicted = np.array([3, 0])
    return SimpleNamespace(
        target=3, originals=originals, images=originals + delta, noise=delta, labels=np.array([0, -1]),
        original_probabilities=softmax_rows([0, 0], k), probabilities=softmax_rows(predicted, k),
        predicted=predicted, target_probability=np.array([0.9, 0.01]), success=np.array([True, False]),
        steps_used=np.array([10, 50]), l2=np.array([1.0, 2.0]), linf=np.array([0.1, 0.1]), confidence=0.9,
        class_names=names)


def universal(shape, names):
    """Target 2; pairs: 0 turned, 1 already the target, 2 changed to another class, 3 unchanged."""
    target = 2
    labels = np.array([0, 2, 1, 1, 0, 0, 3, 2])
    clean = np.array([0, 2, 1, 1, 0, 0, 3, 2])
    noisy = np.array([2, 2, 0, 1, 2, 0, 3, 2])
    return SimpleNamespace(
        target=target, clean=pictures(8, shape), noisy=pictures(8, shape, 1), labels=labels,
        clean_predicted=clean, noisy_predicted=noisy, fooled=noisy == target, changed=noisy != clean,
        fraction_turned=float((noisy[clean != target] == target).mean()), class_names=names)


def steps(count: int, epochs: int = 2, start: float = 0.1) -> list[dict]:
    """steps.csv rows: accuracy rising from `start` to 0.99, a validation point every 10 steps."""
    rows = []
    for i in range(count):
        acc = start + (0.99 - start) * min(1.0, 3 * i / count)
        val = acc if i % 10 == 9 else None
        rows.append({"epoch": i * epochs // count, "step": i + 1, "loss": 2.3 * (1 - acc) + 0.01,
                     "accuracy": acc, "val_loss": None if val is None else 2.3 * (1 - val) + 0.01,
                     "val_accuracy": val})
    return rows


# ---------------------------------------------------------------------------- common
def test_class_label_names_numbers_and_shortening():
    assert plots.class_label(NAMES, 2) == "bird"
    assert plots.class_label(None, 7) == "7"
    assert plots.class_label(LONG, 9, 6) == "Ankle\u2026"
    assert plots.plural(1, "position") == "1 position" and plots.plural(2, "position") == "2 positions"


@pytest.mark.parametrize("shape", [RGB, GREY, (64, 48, 3)])
def test_show_digit_draws_rgb_in_colour_and_grey_in_grey(shape):
    fig = plots.new_figure(2, 2)
    plots.show_digit(fig.subplots(), pictures(1, shape)[0] * 1.5)  # out of range: clipped, not an error
    (array,) = images_of(fig)
    assert array.shape == (shape[:2] + (3,) if shape[-1] == 3 else shape[:2])
    if shape[-1] == 3:
        assert array.max() <= 1.0


# ---------------------------------------------------------------------------- training
def test_curves_have_an_epoch_legend_integer_ticks_and_no_mean_of_one_batch():
    for draw in (plots.loss_curves, plots.accuracy_curves):
        text = joined(draw(steps(3000)))
        assert "epoch end" in text and "mean of the last 37 batches" in text
        tiny = draw(steps(12))
        assert "epoch end" in joined(tiny) and "mean of 1" not in joined(tiny)
        assert "train, each batch" in joined(tiny)
        ticks = tiny.axes[0].get_xticks()
        assert np.allclose(ticks, np.round(ticks))


def test_accuracy_axis_says_how_many_points_fall_below_it():
    fig = plots.accuracy_curves(steps(400, start=0.5))
    low = fig.axes[0].get_ylim()[0]
    assert low > 0.5
    assert "below the axis" in fig.axes[0].get_xlabel()
    rising = plots.accuracy_curves(steps(400, start=0.96))
    assert "below the axis" not in joined(rising)


@pytest.mark.parametrize("shape, names", [(RGB, NAMES), (GREY, None), ((28, 28, 1), LONG)])
def test_prediction_grid_names_classes_explains_p_t_and_marks_mistakes_without_colour(shape, names):
    k = len(names) if names else 10
    labels = np.arange(30) % k
    predictions = labels.copy()
    predictions[[3, 25]] = (labels[[3, 25]] + 1) % k
    fig = plots.prediction_grid(pictures(30, shape), labels, predictions, class_names=names)
    text = joined(fig)
    assert "P: predicted class, T: true class" in text
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 21 and sum(t.startswith(plots.WRONG) for t in titles) == 2
    first = plots.class_label(names, labels[0], 11)
    assert f"P: {first}" in titles[0] and f"T: {first}" in titles[0]
    dashed = [ax for ax in fig.axes if ax.images and ax.spines["left"].get_visible()]
    assert len(dashed) == 2 and all(ax.spines["left"].get_linestyle() == "dashed" for ax in dashed)
    assert all(a.ndim == (3 if shape[-1] == 3 else 2) for a in images_of(fig))


@pytest.mark.parametrize("k, names", [(5, NAMES), (10, None), (25, tuple(f"class {i}" for i in range(25)))])
def test_confusion_ticks_are_class_names_and_big_matrices_drop_the_counts(k, names):
    confusion = np.diag(np.full(k, 50)) + 1
    fig = plots.confusion_figure(confusion, class_names=names)
    ax = fig.axes[0]
    expected = [plots.class_label(names, i, 14) for i in range(k)]
    assert [t.get_text() for t in ax.get_xticklabels()] == expected
    assert [t.get_text() for t in ax.get_yticklabels()] == expected
    cells = [t for t in ax.texts if t.get_text().isdigit()]
    assert len(cells) == (0 if k > 20 else k * k)
    if names:
        assert ax.get_xticklabels()[0].get_rotation() == 45


# ---------------------------------------------------------------------------- filters, activations
def test_filters_of_an_rgb_first_layer_show_each_kernel_as_its_three_slices():
    weights = SimpleNamespace(layer="stem", weights=np.random.default_rng(0).normal(size=(32, 3, 3, 3)),
                              filters=list(range(32)), bias=np.zeros(32))
    fig = plots.filter_grid(weights)
    tiles = images_of(fig)
    assert len(tiles) == 32 and tiles[0].shape == (3, 11)
    assert "R | G | B" in fig.get_suptitle() and "conv1" not in joined(fig)


def test_filter_mosaic_is_labelled_readably_on_every_side():
    weights = SimpleNamespace(layer="conv2", weights=np.random.default_rng(0).normal(size=(32, 32, 3, 3)),
                              filters=list(range(32)), bias=np.zeros(32))
    fig = plots.filter_grid(weights)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "input channel"
    ticks = ax.xaxis.get_major_ticks()
    assert [t.label1.get_text() for t in ticks] == [str(c) for c in range(0, 32, 4)]
    assert min(t.label1.get_fontsize() for t in ticks) >= 9
    assert all(t.label2.get_visible() for t in ticks + ax.yaxis.get_major_ticks())  # top and right too
    assert len(ax.get_xticks(minor=True)) + len(ticks) == 32  # a tick at every kernel
    assert fig.get_size_inches()[1] >= 9  # a kernel gets about 0.3 inch


@pytest.mark.parametrize("shape, names", [(RGB, NAMES), (GREY, None)])
def test_activation_input_is_titled_with_the_predicted_class(shape, names):
    k = len(names) if names else 10
    result = SimpleNamespace(image=pictures(1, shape)[0], maps={"c1": pictures(1, (8, 8, 4))[0]},
                             layers={"c1": "c1"}, probabilities=softmax_rows([3], k)[0], class_names=names)
    fig = plots.activation_grid(result)
    assert f"predicted {plots.class_label(names, 3)}" in joined(fig)
    assert images_of(fig)[0].ndim == (3 if shape[-1] == 3 else 2)


# ---------------------------------------------------------------------------- occlusion
@pytest.mark.parametrize("shape, names", [(RGB, NAMES), (GREY, None)])
def test_occlusion_grid_names_classes_and_draws_one_copy_per_position(shape, names):
    fig = plots.occlusion_grid(occlusion(shape, 14, 7, names))
    text = joined(fig)
    dog = plots.class_label(names, 1, 8)
    assert f"P({dog})" in text and "9 positions" in text
    assert len(fig.axes) == 1 + 9
    assert sum(plots.WRONG in ax.get_title() for ax in fig.axes) == 3
    assert all(a.ndim == (3 if shape[-1] == 3 else 2) for a in images_of(fig))


def test_occlusion_grid_with_one_position_is_singular_and_clear_of_the_image():
    result = occlusion(RGB, 32, 7, NAMES)
    fig = plots.occlusion_grid(result, title="test image 4")
    assert "1 position " in fig.get_suptitle() and "1 positions" not in joined(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    header = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        assert not header.overlaps(ax.get_tightbbox(renderer))


def test_occlusion_grid_with_hundreds_of_positions_draws_the_map_instead():
    result = occlusion(GREY, 1, 1, None, thumbnails=False)
    assert result.count == 784
    fig = plots.occlusion_grid(result)
    assert len(fig.axes) <= 4  # clean image, map, colour bar
    assert "as a map" in fig.get_suptitle()
    (clean, heat) = images_of(fig)
    assert heat.shape == (28, 28)
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


@pytest.mark.parametrize("shape, names", [(RGB, NAMES), (GREY, None)])
def test_occlusion_map_gives_the_centre_and_the_top_left_corner(shape, names):
    result = occlusion(shape, 5, 1, names)
    fig = plots.occlusion_map(result)
    text = joined(fig)
    assert "drawn at its centre" in text and "centred on each pixel" not in text
    assert "top-left (row 0, col 0)" in text and "centre (2, 2)" in text
    clean, dimmed, heat, worst = images_of(fig)
    assert dimmed.ndim == (3 if shape[-1] == 3 else 2) and dimmed.max() <= 0.25 + 1e-6
    assert plots.class_label(names, 1) in text


# ---------------------------------------------------------------------------- attacks
@pytest.mark.parametrize("shape, names", [(RGB, NAMES), (GREY, None)])
@pytest.mark.parametrize("targeted", [False, True])
def test_attack_images_name_targets_and_predictions(shape, names, targeted):
    fig = plots.attack_images(attack(shape, names, targeted))
    text = joined(fig)
    last = plots.class_label(names, (len(names) if names else 10) - 1)
    assert f"target {last}" in text and f"pred {last}" in text
    assert f"{plots.WRONG} target {plots.class_label(names, 1)}" in text
    assert all(a.ndim == (3 if shape[-1] == 3 else 2) for a in images_of(fig))


@pytest.mark.parametrize("shape, names", [(RGB, NAMES), (GREY, None)])
def test_noise_rows_show_the_rgb_noise_as_its_channel_mean(shape, names):
    result = noise(shape, names)
    fig = plots.noise_rows(result)
    arrays = images_of(fig)
    assert arrays[2].shape == shape[:2] and np.allclose(arrays[2], result.noise[0].mean(axis=-1))
    assert f"say {plots.class_label(names, 3)}" in fig.get_suptitle()
    assert ("channel mean" in joined(fig)) == (shape[-1] == 3)


@pytest.mark.parametrize("shape, names", [(RGB, NAMES), (GREY, None)])
def test_universal_pairs_tell_turned_already_and_changed_apart(shape, names):
    fig = plots.universal_pairs(universal(shape, names))
    text = joined(fig)
    for kind in ("turned", "already the target", "changed to another class", "unchanged"):
        assert kind in text
    noisy_axes = [ax for ax in fig.axes if ax.images and ax.get_subplotspec().rowspan.start == 1]
    styles = [(ax.spines["left"].get_visible(), ax.spines["left"].get_linestyle()) for ax in noisy_axes[:4]]
    assert len(set(styles)) == 4  # turned, already, changed, unchanged: four different frames
    bars = fig.axes[-1]
    turned = [t.get_text() for t in bars.texts][:4]  # labels of the "turned" bars, classes 0 1 2 3
    assert turned == ["67%", "0%", "(target)", "0%"]
    assert plots.class_label(names, 2) in text


# ---------------------------------------------------------------------------- study
def band(iteration, values):
    values = np.asarray(values, np.float64)
    return SimpleNamespace(iteration=np.asarray(iteration, np.float64), mean=values, low=values - 0.001,
                           high=values + 0.001)


def variant(batchnorm: bool, first_val: float):
    it = np.arange(1, 41) * 100.0
    train = np.minimum(0.999, 0.6 + 0.1 * np.log1p(np.arange(40)))
    val = np.r_[first_val, np.linspace(0.98, 0.994, 9)]
    curves = {"accuracy": band(it, train), "val_accuracy": band(np.arange(1, 11) * 400.0, val),
              "loss": band(it, 1 - train + 0.01), "val_loss": band(np.arange(1, 11) * 400.0, 1 - val + 0.01)}
    return SimpleNamespace(batchnorm=batchnorm, count=2, curves=curves)


def test_band_curves_zoom_on_the_later_points_and_mark_the_early_ones():
    result = SimpleNamespace(plain=variant(False, 0.95), batchnorm=variant(True, 0.76), threshold=0.98,
                             recipe={"train": {"epochs": 4, "batch_size": 16, "val_every": 400,
                                               "lr_schedule": "cosine"}, "seeds": 2},
                             runs=[SimpleNamespace(metrics={"steps_per_epoch": 1000, "epochs": 4}, history=[])])
    fig = plots.band_curves(result, "accuracy")
    bottom = fig.axes[0].get_ylim()[0]
    assert 0.96 < bottom < 0.98
    assert "below the axis" in joined(fig)
    assert "(4 epochs, batch 16, lr schedule cosine;" in fig.get_suptitle()
    assert fig.axes[1].get_title() == "validation (every 400 iterations and at epoch ends)"
    assert plots.band_curves(result, "loss").axes[0].get_yscale() == "log"
