"""Quantus' metrics (kerascnn.attributions.metrics) against formulas written here: the Gini index by the
mean absolute difference, entropy, Pearson on a linear model whose logit drop is a sum of weights
times pixels, max-/avg-sensitivity and local Lipschitz on a model whose gradient is 2 W x, SSIM by
sliding windows; then the experiment and `kerascnn explain --metrics` on the tiny fixtures."""
import json

import numpy as np
import pytest

from kerascnn.attributions import gradients as attributions, metrics
from kerascnn.experiments import explanation_metrics as experiment
from tests.support import assert_one_line_error, cli, written

SHAPE = (6, 5, 1)   # not MNIST's


@pytest.fixture(scope="module")
def linear():
    """logit k = x . W[:, k] + b[k]."""
    import keras

    rng = np.random.default_rng(0)
    weights = rng.normal(0, 1.0, (int(np.prod(SHAPE)), 3)).astype(np.float32)
    inputs = keras.Input(SHAPE)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    model.layers[-1].set_weights([weights, rng.normal(0, 0.1, 3).astype(np.float32)])
    return model, weights


@pytest.fixture(scope="module")
def square():
    """logit k = (x * x) . W[:, k]: its gradient (saliency) is 2 W[:, k] * x."""
    import keras

    rng = np.random.default_rng(1)
    weights = rng.normal(0, 1.0, (int(np.prod(SHAPE)), 3)).astype(np.float32)
    inputs = keras.Input(SHAPE)
    squared = keras.layers.Multiply()([inputs, inputs])
    model = keras.Model(inputs, keras.layers.Dense(3, use_bias=False)(keras.layers.Flatten()(squared)))
    model.layers[-1].set_weights([weights])
    return model, weights


def images(n=4, seed=2, low=0.0):
    x = np.random.default_rng(seed).random((n,) + SHAPE).astype(np.float32)
    x.reshape(n, -1)[:, 0] = low       # each image's minimum: Quantus' "black"
    return x


def test_gini_equals_the_mean_absolute_difference_formula():
    a = np.array([[0.0, -3.0, 1.0, 2.0, 0.5, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    x = np.abs(a) / np.abs(a).max(axis=1, keepdims=True) + 1e-7
    n = x.shape[1]
    gini = np.abs(x[:, :, None] - x[:, None, :]).sum(axis=(1, 2)) / (2 * n * n * x.mean(axis=1))
    np.testing.assert_allclose(metrics.sparseness(a), gini, rtol=1e-9)
    one = np.zeros((1, 100))
    one[0, 7] = 5.0
    assert metrics.sparseness(a)[1] == pytest.approx(0.0, abs=1e-9) and metrics.sparseness(one)[0] > 0.98


def test_complexity_is_the_entropy_of_the_share_of_each_pixel():
    a = np.array([[1.0, -1.0, 2.0, 0.0], [3.0, 3.0, 3.0, 3.0]])
    np.testing.assert_allclose(metrics.complexity(a), [1.5 * np.log(2), np.log(4)], rtol=1e-9)
    assert metrics.complexity(np.array([[0.0, 0.0, 4.0]]))[0] == pytest.approx(0.0, abs=1e-9)


def test_faithfulness_correlation_is_one_for_the_exact_contributions_of_a_linear_model(linear):
    model, w = linear
    x = images(low=0.25)
    targets = np.array([0, 1, 2, 1])
    m = x.min(axis=(1, 2, 3), keepdims=True)
    exact = np.stack([(w[:, t].reshape(SHAPE) * (x[i] - m[i]))[..., 0] for i, t in enumerate(targets)])
    predict = lambda v: model.predict_on_batch(v)   # noqa: E731
    score = metrics.faithfulness_correlation(predict, x, targets, exact, nr_runs=20, subset_size=9, seed=3)
    np.testing.assert_allclose(score, 1.0, atol=1e-5)


def test_faithfulness_correlation_against_pearson_of_the_closed_form_drop(linear):
    model, w = linear
    x = images(low=0.1)
    targets = np.array([2, 0, 1, 1])
    maps = np.random.default_rng(5).normal(size=(4,) + SHAPE[:2])
    score = metrics.faithfulness_correlation(lambda v: model.predict_on_batch(v), x, targets, maps,
                                             nr_runs=30, subset_size=7, seed=11)
    rng = np.random.default_rng(11)     # the same subsets: image by image, run by run
    pixels = SHAPE[0] * SHAPE[1]
    for i, t in enumerate(targets):
        subsets = [rng.choice(pixels, 7, replace=False) for _ in range(30)]
        drop = [(w[:, t] * (x[i].ravel() - x[i].min()))[s].sum() for s in subsets]
        sums = [(maps[i].ravel() / np.abs(maps[i]).max())[s].sum() for s in subsets]
        assert score[i] == pytest.approx(np.corrcoef(sums, drop)[0, 1], abs=1e-5)


def test_faithfulness_correlation_of_several_methods_runs_the_forward_passes_once(linear):
    model, _ = linear
    x = images(low=0.1)
    targets = np.array([2, 0, 1, 1])
    rng = np.random.default_rng(7)
    maps = {name: rng.normal(size=(4,) + SHAPE[:2]) for name in ("a", "b", "c")}
    calls = []

    def predict(v):
        calls.append(len(v))
        return model.predict_on_batch(v)

    together = metrics.faithfulness_correlation(predict, x, targets, maps, nr_runs=12, subset_size=5, seed=4,
                                                images_per_call=3)
    assert calls == [3 + 3 * 12, 1 + 12]     # two chunks of images, once for all three methods
    assert list(together) == ["a", "b", "c"]
    for name, m in maps.items():             # bit-equal to a call with that method's maps alone
        alone = metrics.faithfulness_correlation(predict, x, targets, m, nr_runs=12, subset_size=5, seed=4,
                                                 images_per_call=3)
        np.testing.assert_array_equal(together[name], alone)
    assert not np.array_equal(together["a"], together["b"])


def test_sensitivity_and_local_lipschitz_of_a_gradient_known_in_closed_form(square):
    model, w = square
    x = images(n=2, low=0.0)
    targets = np.array([1, 2])
    rng = np.random.default_rng(0)
    uniform = metrics.uniform_copies(x, 50, 0.2, rng=rng)
    gauss = metrics.gaussian_copies(x, 50, 0.0, 0.1, rng=rng)
    assert np.abs(uniform - x[:, None]).max() <= 0.2 and np.abs(uniform - x[:, None]).max() > 0.15

    def explain(v, t):
        return attributions.pixel_maps(attributions.saliency(model, v.reshape((-1,) + SHAPE), np.repeat(t, 50)))

    maps = attributions.pixel_maps(attributions.saliency(model, x, targets))
    high, mean = metrics.sensitivity(maps, np.stack([explain(uniform[i], t) for i, t in enumerate(targets)]))
    lipschitz = metrics.local_lipschitz(maps, np.stack([explain(gauss[i], t) for i, t in enumerate(targets)]), x, gauss)
    for i, t in enumerate(targets):
        row = w[:, t]
        a = 2 * row * x[i].ravel()
        ratios = [np.linalg.norm(2 * row * (u.ravel() - x[i].ravel())) / np.linalg.norm(a) for u in uniform[i]]
        assert high[i] == pytest.approx(max(ratios), rel=1e-4) and mean[i] == pytest.approx(np.mean(ratios), rel=1e-4)
        moved = [np.linalg.norm(a / np.abs(a).max() - 2 * row * g.ravel() / np.abs(2 * row * g.ravel()).max())
                 / np.linalg.norm(g.ravel() - x[i].ravel()) for g in gauss[i]]
        assert lipschitz[i] == pytest.approx(max(moved), rel=1e-4)


def _ssim_by_windows(u, v, win=7):
    """SSIM of two 1-D signals: uniform windows, sample covariances, the mean over the full windows."""
    both = np.concatenate([u, v])
    c1, c2 = (0.01 * (both.max() - both.min())) ** 2, (0.03 * (both.max() - both.min())) ** 2
    values = []
    for s in range(len(u) - win + 1):
        p, q = u[s:s + win], v[s:s + win]
        cov = np.cov(p, q)      # ddof 1, as skimage's use_sample_covariance
        values.append((2 * p.mean() * q.mean() + c1) * (2 * cov[0, 1] + c2)
                      / ((p.mean() ** 2 + q.mean() ** 2 + c1) * (cov[0, 0] + cov[1, 1] + c2)))
    return np.mean(values)


def test_random_logit_is_the_ssim_of_the_normalised_maps_and_the_off_class_is_another_class():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(3, 8, 6)), rng.normal(size=(3, 8, 6))
    b[0] = 2 * a[0]
    expected = [_ssim_by_windows(p.ravel() / np.abs(p).max(), q.ravel() / np.abs(q).max()) for p, q in zip(a, b)]
    score = metrics.random_logit(a, b)
    np.testing.assert_allclose(score, expected, rtol=1e-6)
    assert score[0] == pytest.approx(1.0)
    targets = np.array([0, 3, 9, 5, 5, 2, 7, 0])
    off = metrics.off_classes(targets, 10, seed=42)
    np.random.seed(42)                   # Quantus' draw: the k-th class of those other than the target
    k = np.random.randint(0, 9, len(targets))
    assert off.tolist() == [[c for c in range(10) if c != t][j] for t, j in zip(targets, k)]
    assert (off != targets).all() and off.max() < 10


def test_an_all_zero_map_gives_inf_or_nan_not_a_warning():
    with np.errstate(all="raise"):
        assert metrics.normalise_by_max(np.zeros((2, 3, 3))).sum() == 0
        assert np.isinf(metrics.sensitivity(np.zeros((1, 4)), np.ones((1, 2, 4)))[0][0])   # as Quantus: x / 0
        assert np.isnan(metrics.sensitivity(np.zeros((1, 4)), np.zeros((1, 2, 4)))[1][0])


def test_the_experiment_scores_every_method_with_its_settings(tiny_subject):
    options = experiment.Options(count=4, robust_count=1, nr_samples=3, nr_runs=10, randomise=1, steps=4)
    options.settings.smoothgrad_samples, options.settings.ig_steps = 4, 4
    seen = []
    result = experiment.run(tiny_subject, options, progress=lambda *a: seen.append(a))
    assert set(result.values) == set(experiment.METRICS) and seen[-1][0] == seen[-1][2] and seen[-1][1] == 4
    for key, per in result.values.items():
        n = {"randomisation": 1, **dict.fromkeys(experiment.ROBUST, 1)}.get(key, 4)
        assert set(per) == set(attributions.METHODS) and all(len(v) == n for v in per.values()), key
    np.testing.assert_allclose(result.values["deletion"]["saliency"], result.faithfulness.auc("deletion", "saliency"))
    data = result.to_dict()
    s = data["settings"]
    assert s["sensitivity"]["nr_samples"] == 3 and s["sensitivity"]["lower_bound"] == 0.2
    assert s["faithfulness_correlation"]["subset_size"] == 224 and s["random_logit"]["seed"] == 42
    assert s["local_lipschitz"]["perturb_std"] == 0.1 and s["sparseness"]["abs"] is True
    assert data["metrics"]["complexity"]["better"] == "lower" and "faithfulness" in data
    again = experiment.run(tiny_subject, options)
    np.testing.assert_allclose(again.values["max-sensitivity"]["smoothgrad"],
                               result.values["max-sensitivity"]["smoothgrad"])
    assert experiment.Options(subset_size=None).subset((14, 14)) == 56


@pytest.fixture
def tiny(idx_dir, tiny_model_path):
    return ["--model", tiny_model_path, "--data-dir", idx_dir]


@pytest.fixture
def tiny_subject(idx_dir, tiny_model_path):
    from kerascnn.api.inputs import subject

    return subject(str(tiny_model_path), str(idx_dir))


def test_the_command_prints_the_table_and_writes_every_setting(tiny, tmp_path):
    import kerascnn as kc

    out = tmp_path / "m"
    args = ["--metrics", "sparseness,complexity,faithfulness-correlation", "--count", 3, "--method", "saliency,gradcam"]
    ran = cli("explain", *tiny, *args, "--out", out)
    assert ran.exit_code == 0, ran.output
    assert written(out) == {"metrics.png", "result.json"}
    assert "sparseness (Gini) \u2191" in ran.output and "complexity (entropy) \u2193" in ran.output
    data = json.loads((out / "result.json").read_text())
    assert list(data["metrics"]) == ["faithfulness-correlation", "sparseness", "complexity"]
    assert data["settings"]["faithfulness_correlation"]["nr_runs"] == 100 and "faithfulness" not in data
    api = kc.explain(str(tiny[1]), str(tiny[3]), metrics="sparseness,complexity,faithfulness-correlation", count=3,
                     method="saliency,gradcam", progress=False).to_dict()
    assert api["metrics"] == data["metrics"]


@pytest.mark.parametrize("args, fragment", [
    (["--metrics", "gini"], "unknown metric 'gini'"),
    (["--metrics", "sparseness,"], "--metrics"),
    (["--metrics", "--digit", 3], "--metrics scores test images"),
    (["--metrics", "--faithfulness"], "--metrics scores test images"),
    (["--metrics", "all", "--count", 0], "--count"),
])
def test_bad_input_is_one_line_with_exit_2(args, fragment, tiny, tmp_path):
    ran = cli("explain", *tiny, *args, "--out", tmp_path / "o")
    assert_one_line_error(ran, fragment, exit_code=2)
    assert not (tmp_path / "o").exists()


def test_the_numbers_agree_with_quantus_where_it_is_installed(square):
    """Quantus is not a dependency (benchmarks/check_quantus.py says how to install it beside the pins);
    one image per call, where its normalisation (one max per call) and ours (per map) coincide."""
    quantus = pytest.importorskip("quantus")
    model, _ = square
    x = images(n=6, seed=7)
    y = model.predict_on_batch(x).argmax(axis=1)

    def explain_func(model, inputs, targets, **_):
        v = np.asarray(inputs, np.float32).reshape((-1,) + SHAPE)
        return attributions.pixel_maps(attributions.saliency(model, v, np.asarray(targets)))

    maps = explain_func(model, x, y)
    quiet = dict(disable_warnings=True, display_progressbar=False)

    def theirs(metric, **kw):
        return np.concatenate([np.ravel(metric(model=model, x_batch=x[i:i + 1], y_batch=y[i:i + 1],
                                               a_batch=maps[i:i + 1], channel_first=False, batch_size=1, **kw))
                               for i in range(len(x))])

    np.testing.assert_allclose(metrics.sparseness(maps), theirs(quantus.Sparseness(**quiet)), rtol=1e-6)
    np.testing.assert_allclose(metrics.complexity(maps), theirs(quantus.Complexity(**quiet)), rtol=1e-6)
    off = np.concatenate([metrics.off_classes(y[i:i + 1], 3, 42) for i in range(len(y))])
    np.testing.assert_allclose(metrics.random_logit(maps, explain_func(model, x, off)),
                               theirs(quantus.RandomLogit(num_classes=3, **quiet), explain_func=explain_func),
                               rtol=1e-5)
    ours = metrics.faithfulness_correlation(lambda v: model.predict_on_batch(v), x, y, maps, subset_size=9)
    diff = ours - theirs(quantus.FaithfulnessCorrelation(subset_size=9, return_aggregate=False, **quiet))
    assert abs(diff.mean()) <= 3 * diff.std(ddof=1) / np.sqrt(len(diff)) + 1e-3
    high, mean = metrics.sensitivity(maps, np.stack([explain_func(model, c, np.repeat(t, 200)) for c, t in
                                                     zip(metrics.uniform_copies(x, 200, 0.2), y)]))
    diff = mean - theirs(quantus.AvgSensitivity(**quiet), explain_func=explain_func)
    assert abs(diff.mean()) <= 3 * diff.std(ddof=1) / np.sqrt(len(diff)) + 1e-3


def test_the_report_scores_the_explanations_beside_the_faithfulness_section(tmp_path, idx_dir, tiny_model_path):
    from kerascnn.reporting.build import ReportConfig, build_report
    from kerascnn.reporting.plan import REPORT_OPTIONS

    chosen = REPORT_OPTIONS["explanation_metrics"]["metrics"]
    assert not set(chosen) & set(experiment.ROBUST)  # minutes an image: left to the command, and said
    config = ReportConfig(model=str(tiny_model_path), bn_model=str(tiny_model_path), data_dir=str(idx_dir),
                          out_dir=str(tmp_path / "r"), sections=("explanation_metrics",),
                          options={"explanation_metrics": {"count": 3, "nr_runs": 10}})
    result = build_report(config)
    assert len(result.numbers["explanation_metrics"]["indices"]) == 3
    assert list(result.numbers["explanation_metrics"]["metrics"]) == list(chosen)
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Explanations scored along the field" in page and "Not computed here: max-sensitivity" in page
    assert (tmp_path / "r" / "explanation_metrics_metrics.png").is_file()


def test_the_subjects_memo_gives_the_maps_of_computing_again_and_spares_the_work(tiny_subject, monkeypatch):
    """Subject.memo: faithfulness and the metrics explain the same first test images with the same
    settings, and random-logit re-explains them for other classes, where occlusion's forward passes are
    the same. With the memo: the same numbers as a fresh subject, each map set and each image's occluded
    copies computed once; a changed setting, target or image is computed anew."""
    from kerascnn.api.inputs import subject
    from kerascnn.attributions import patches
    from kerascnn.experiments import faithfulness

    settings = attributions.Settings()
    settings.smoothgrad_samples, settings.ig_steps = 4, 4
    images = tiny_subject.task.test()[0][:3]
    targets = tiny_subject.logits(images).argmax(axis=1)
    model, memo = tiny_subject.logits_model, tiny_subject.memo
    layer = attributions.gradcam_layer(tiny_subject, None)
    calls = {"explain": 0, "occluded": 0}
    real_explain, real_occluded = attributions._explain, patches.predict_occluded

    def count(name, real):
        def spy(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return spy

    monkeypatch.setattr(attributions, "_explain", count("explain", real_explain))
    monkeypatch.setattr(attributions, "predict_occluded", count("occluded", real_occluded))
    fresh = attributions.explain(model, images, targets, settings, layer)
    first = attributions.explain(model, images, targets, settings, layer, memo=memo)
    first.maps["saliency"][:] = 7.0  # a caller's change does not reach the memo
    second = attributions.explain(model, images, targets, settings, layer, memo=memo)
    assert calls == {"explain": 2, "occluded": 2 * len(images)}
    for m in settings.methods:
        np.testing.assert_array_equal(second.maps[m], fresh.maps[m])
    other = (targets + 1) % tiny_subject.num_classes
    off = attributions.explain(model, images, other, settings, layer, memo=memo)
    assert calls == {"explain": 3, "occluded": 2 * len(images)}  # occlusion reused its copies' logits
    np.testing.assert_array_equal(off.maps["occlusion"], attributions.occlusion(model, images, other,
                                                                                 settings.patch(images.shape[1:])))
    changed = attributions.Settings(seed=settings.seed + 1)
    changed.smoothgrad_samples, changed.ig_steps = 4, 4
    attributions.explain(model, images, targets, changed, layer, memo=memo)
    attributions.explain(model, images[:2], targets[:2], settings, layer, memo=memo)
    assert calls["explain"] == 5

    # the experiments: the metrics after faithfulness on one subject equal the metrics on a fresh one
    options = experiment.Options(count=3, metrics=("faithfulness-correlation", "sparseness", "random-logit"),
                                 nr_runs=10, settings=settings)
    faithfulness.run(tiny_subject, faithfulness.Options(count=3, steps=4, randomise=0, settings=settings))
    before = calls["explain"]
    shared = experiment.run(tiny_subject, options)
    assert calls["explain"] == before + 1  # only random-logit's other classes
    alone = experiment.run(subject(tiny_subject.path, tiny_subject.task.data_dir), options)
    for metric in options.metrics:
        for m in settings.methods:
            np.testing.assert_array_equal(shared.values[metric][m], alone.values[metric][m])


def test_the_memo_keeps_the_newest_within_its_bytes_and_forgets_the_oldest():
    """A bound in bytes of arrays: the MNIST report's 100 per-image occlusion entries must all fit (an
    entry count of 8 kept 7 of them, and random-logit recomputed the rest)."""
    memo = attributions.Memo(limit=2 * 1200)
    made = []
    for key in ("a", "b", "a", "c", "b"):
        memo.get(key, lambda key=key: made.append(key) or (np.zeros(100), {"x": np.zeros(100, np.float32)}))
    assert made == ["a", "b", "c", "b"] and list(memo.kept) == ["c", "b"]  # 1,200 bytes each: two fit
    big = memo.get("big", lambda: np.zeros(1000))  # over the limit alone: returned, not kept
    assert big.shape == (1000,) and list(memo.kept) == ["c", "b"]
    memo = attributions.Memo()
    for i in range(100):
        memo.get(("occlusion", i), lambda: (np.zeros(10, np.float32), np.zeros((625, 10), np.float32)))
    assert len(memo.kept) == 100


def test_occlusion_stride_is_the_stride_of_the_attribution_and_is_recorded(tiny_subject):
    """Settings.occlusion_stride (the report's 14 at 224 px, where the default 7 costs 6 s an image):
    explain's occlusion map is occlusion() at that stride, computed here by hand from the logits; the
    default stride keeps 32 positions a side at most; 0 is one BadValue naming it."""
    from kerascnn.errors import BadValue

    images = tiny_subject.task.test()[0][:2]
    targets = tiny_subject.logits(images).argmax(axis=1)
    model = tiny_subject.logits_model
    settings = attributions.Settings(methods=("occlusion",), occlusion_stride=5).check()
    found = attributions.explain(model, images, targets, settings).maps["occlusion"]
    patch = settings.patch(images.shape[1:])
    for image, target, got in zip(images, targets, found):
        total, count = np.zeros(image.shape[:2]), np.zeros(image.shape[:2])
        clean = float(tiny_subject.logits(image[None])[0, target])
        for r in range(0, image.shape[0] - patch + 1, 5):
            for c in range(0, image.shape[1] - patch + 1, 5):
                copy = image.copy()
                copy[r:r + patch, c:c + patch] = 0.0
                total[r:r + patch, c:c + patch] += clean - float(tiny_subject.logits(copy[None])[0, target])
                count[r:r + patch, c:c + patch] += 1
        np.testing.assert_allclose(got, total / np.maximum(count, 1), atol=1e-4)
    assert attributions.Settings().stride((28, 28, 1)) == 1
    assert attributions.Settings().stride((224, 224, 3)) == 7
    with pytest.raises(BadValue) as caught:
        attributions.Settings(occlusion_stride=0).check()
    assert caught.value.param == "occlusion_stride"
