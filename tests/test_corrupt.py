"""The corruption suites (kerascnn.corrupt), on synthetic images: every corruption of both suites at
every severity keeps the shape and [0, 1], is the identity at severity 0 and mild at 1, damages more
as the severity rises (mean absolute pixel change), is deterministic under a seed and the same for an
image whatever the batch around it, on greyscale and RGB alike; and the published sets come through
tensorflow-datasets (mocked)."""
import numpy as np
import pytest
from scipy import ndimage

from kerascnn.corrupt import NAMES, SUITES, corrupt, suite
from kerascnn.errors import BadValue

CASES = [(s, n) for s in SUITES for n in NAMES[s]]


def strokes(n: int, side: int, channels: int, seed: int) -> np.ndarray:
    """(n, side, side, channels) in [0, 1]: digit-like bright strokes on black (grey), or on a smooth
    coloured field (RGB)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, side, side, channels))
    rows, cols = np.mgrid[0:side, 0:side]
    for i in range(n):
        canvas = np.zeros((side, side))
        for _ in range(3):
            (r0, c0), (r1, c1) = rng.uniform(0.2, 0.8, (2, 2)) * side
            t = np.clip(((rows - r0) * (r1 - r0) + (cols - c0) * (c1 - c0)) / ((r1 - r0) ** 2 + (c1 - c0) ** 2), 0, 1)
            d = np.hypot(rows - r0 - t * (r1 - r0), cols - c0 - t * (c1 - c0))
            canvas = np.maximum(canvas, np.clip(1.5 - d * 28 / side / 1.2, 0, 1))
        if channels == 1:
            out[i, ..., 0] = canvas
        else:
            field = ndimage.gaussian_filter(rng.random((side, side, channels)), (side / 6, side / 6, 0))
            field = (field - field.min()) / (field.max() - field.min())
            out[i] = np.clip(0.6 * field + canvas[..., None] * rng.random(channels), 0, 1)
    return out.astype(np.float32)


GREY = strokes(24, 28, 1, seed=0)
RGB = strokes(24, 32, 3, seed=1)


def test_the_names_are_each_suites_functions_in_order():
    for s in SUITES:
        assert tuple(suite(s)) == NAMES[s] and len(NAMES[s]) == 15


@pytest.mark.parametrize("suite_name, name", CASES)
@pytest.mark.parametrize("images", [GREY, RGB], ids=["grey", "rgb"])
def test_a_corruption_keeps_the_range_and_rises_with_severity(suite_name, name, images):
    assert np.array_equal(corrupt(images, name, 0, suite_name=suite_name), images)  # severity 0: the identity
    damage = []
    for severity in range(1, 6):
        out = corrupt(images, name, severity, seed=0, suite_name=suite_name)
        assert out.shape == images.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1
        damage.append(float(np.abs(out - images).mean()))
    assert damage[0] < 0.2, f"severity 1 is not mild: mean change {damage[0]:.3f}"
    assert all(a < b for a, b in zip(damage, damage[1:])), f"damage does not rise: {np.round(damage, 4)}"


@pytest.mark.parametrize("suite_name, name", CASES)
def test_a_corruption_is_deterministic_under_a_seed_and_per_image(suite_name, name):
    images = GREY[:6] if suite_name == "mnist-c" else RGB[:6]
    first = corrupt(images, name, 3, seed=7, suite_name=suite_name)
    np.testing.assert_array_equal(first, corrupt(images, name, 3, seed=7, suite_name=suite_name))
    # image 4 alone, told its index, is corrupted as it was in the batch
    np.testing.assert_array_equal(first[4:5], corrupt(images[4:5], name, 3, seed=7, suite_name=suite_name,
                                                      first_index=4))


def test_random_corruptions_change_with_the_seed():
    for suite_name, name in [("mnist-c", "shot_noise"), ("mnist-c", "fog"), ("common", "gaussian_noise"),
                             ("common", "snow")]:
        a = corrupt(GREY[:4], name, 3, seed=0, suite_name=suite_name)
        b = corrupt(GREY[:4], name, 3, seed=1, suite_name=suite_name)
        assert not np.array_equal(a, b), name


def test_closed_forms_of_the_deterministic_ones():
    """Brightness adds c to a grey image, stripe inverts the outer columns, contrast pulls to the mean."""
    x = GREY[:3]
    np.testing.assert_allclose(corrupt(x, "brightness", 2, suite_name="mnist-c"), np.clip(x + 0.2, 0, 1), atol=1e-6)
    striped = corrupt(x, "stripe", 5, suite_name="mnist-c")
    np.testing.assert_allclose(striped[:, :, :7], 1 - x[:, :, :7], atol=1e-6)
    np.testing.assert_allclose(striped[:, :, 7:21], x[:, :, 7:21], atol=1e-6)
    mean = x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(corrupt(x, "contrast", 3, suite_name="common"), (x - mean) * 0.4 + mean, atol=1e-5)


def test_bad_names_and_severities_are_refused():
    with pytest.raises(BadValue, match="choose from shot_noise"):
        corrupt(GREY[:1], "zoom_blur", 1, suite_name="mnist-c")
    with pytest.raises(BadValue, match="1-5"):
        corrupt(GREY[:1], "fog", 6, suite_name="mnist-c")
    with pytest.raises(BadValue, match="mnist-c, common"):
        corrupt(GREY[:1], "fog", 1, suite_name="imagenet")


def test_the_published_sets_come_from_tensorflow_datasets(monkeypatch):
    """--source tfds reads mnist_corrupted/<name> (MNIST-C's one severity) and
    cifar10_corrupted/<name>_<severity>: through tfds' mock data, the images and labels arrive in
    [0, 1] and in order."""
    import tensorflow_datasets as tfds

    from kerascnn.corrupt import published
    from kerascnn.data import sources

    monkeypatch.setattr(sources, "_can_reach", lambda *a, **k: True)  # the mock's prepare is a no-op
    with tfds.testing.mock_data(num_examples=7, policy=tfds.testing.MockPolicy.USE_CODE):
        images, labels = published.load("mnist-c", "fog", 3, count=5)
        assert images.shape == (5, 28, 28, 1) and labels.shape == (5,)
        assert images.dtype == np.float32 and 0 <= images.min() and images.max() <= 1
        rgb, _ = published.load("common", "snow", 2, count=4)
        assert rgb.shape == (4, 32, 32, 3)
        first = [e["image"] for e in tfds.as_numpy(tfds.load("cifar10_corrupted/snow_2", split="test").take(4))]
        np.testing.assert_allclose(rgb, np.stack(first) / 255.0, atol=1e-6)
    assert published.severity_of("mnist-c", "fog", 1) == 5 and published.severity_of("common", "fog", 2) == 2


def test_the_experiment_reads_the_published_sets_through_tfds(tiny_model_path, idx_dir, monkeypatch):
    """`corruptions --source tfds`: each corruption's published MNIST-C images (mocked) through the
    model, its accuracy recomputed on the same images loaded here, one column (the published severity)."""
    import tensorflow_datasets as tfds

    from kerascnn.data.tasks import Task
    from kerascnn.experiments import corruptions as experiment
    from kerascnn.model.subject import Subject
    from kerascnn.data import sources
    from tests.support import load_model, probabilities

    monkeypatch.setattr(sources, "_can_reach", lambda *a, **k: True)
    subject = Subject.load(tiny_model_path, Task("mnist", str(idx_dir)))  # clean images: an MNIST-shaped folder
    with tfds.testing.mock_data(num_examples=9, policy=tfds.testing.MockPolicy.USE_CODE):
        result = experiment.run(subject, experiment.Options(source="tfds", corruptions=("fog", "zigzag"), count=6,
                                                            baseline="none"))
        model = load_model(tiny_model_path)
        for i, name in enumerate(("fog", "zigzag")):
            data = list(tfds.as_numpy(tfds.load(f"mnist_corrupted/{name}", split="test").take(6)))
            images, truth = np.stack([e["image"] for e in data]) / 255.0, np.array([e["label"] for e in data])
            expected = np.mean(probabilities(model, images).argmax(1) == truth)
            assert result.models[0].accuracy[i, 0] == pytest.approx(expected)
    assert result.severities == ("published",) and result.published_severity == {"fog": 5, "zigzag": 1}
    assert result.baseline is None and result.to_dict()["baseline"] is None


@pytest.mark.parametrize("mode", ["nearest", "constant"])
@pytest.mark.parametrize("shape", [(28, 28), (40, 36, 3), (9, 11, 1)], ids=["hw", "rgb", "small"])
def test_the_sparse_correlation_is_ndimages_bit_for_bit(mode, shape):
    """Motion blur and snow correlate with a ray-shaped kernel one shifted slice per weight (120x faster
    at 224 px); the float64s must be ndimage.correlate's exactly, kernels larger than the image and
    weights below DBL_EPSILON (which ndimage leaves out) included."""
    from kerascnn.corrupt import helpers

    rng = np.random.default_rng(3)
    image = rng.random(shape)
    kernels = [helpers.motion_kernel(length, sigma, angle)
               for length, sigma, angle in ((3, 1, 0), (10, 2.5, 37.0), (21, 7, -120.0), (8, 0.4, 90.0))]
    dense = rng.random((5, 7))
    dense[1, 2] = 1e-17  # below DBL_EPSILON: ndimage skips it
    # a range of magnitudes, so that a weight of 1e-17 would show where ndimage leaves it out
    wide = image * 10.0 ** rng.integers(-20, 20, shape)
    for image, kernel in [(image, k) for k in kernels] + [(image, dense / dense.sum()), (wide, dense / dense.sum())]:
        expected = (ndimage.correlate(image, kernel, mode=mode) if image.ndim == 2 else
                    np.stack([ndimage.correlate(image[..., c], kernel, mode=mode) for c in range(shape[-1])], -1))
        found = helpers.correlate_sparse(image, kernel, mode)
        assert found.dtype == np.float64 and found.shape == image.shape
        assert np.array_equal(found, expected), (kernel.shape, np.abs(found - expected).max())


@pytest.mark.parametrize("suite_name, name", [("common", "motion_blur"), ("common", "snow"), ("mnist-c", "motion_blur")])
def test_the_ray_kernel_corruptions_give_the_images_ndimage_gave(suite_name, name, monkeypatch):
    """The corruptions that took ndimage's correlation (motion blur, snow: 200 of the 210 s a 224 px
    report's corruptions section took) give the same float32 images with the sparse one."""
    from kerascnn.corrupt import helpers

    images = np.random.default_rng(4).random((2, 64, 64, 3)).astype(np.float32)
    fast = [corrupt(images, name, s, 0, suite_name) for s in (1, 5)]

    def ndimage_form(image, kernel, mode="constant"):
        if image.ndim == 2:
            return ndimage.correlate(image, kernel, mode=mode)
        return np.stack([ndimage.correlate(image[..., c], kernel, mode=mode) for c in range(image.shape[-1])], -1)

    monkeypatch.setattr(helpers, "correlate_sparse", ndimage_form)
    slow = [corrupt(images, name, s, 0, suite_name) for s in (1, 5)]
    for a, b in zip(fast, slow):
        assert np.array_equal(a, b)
