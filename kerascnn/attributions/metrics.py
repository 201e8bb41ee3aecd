"""Scores of attribution maps the way Quantus 0.6 computes them (Hedström et al. 2023): arrays in,
numbers out, one value per image. The experiment around them is kerascnn.experiments.explanation_metrics.

Every default below is Quantus 0.6.0's (quantus/metrics/...), cited where it is set; `a` is a batch of
maps (N, ...) flattened to (N, F), `x` the images (N, H, W, C) in [0, 1]. Quantus' preprocessing is
`normalise` (normalise_by_max: each map divided by its largest |value|) and then `abs`.

    faithfulness_correlation  Bhatt et al. 2020. higher is better: Pearson, over nr_runs random pixel
                              subsets, of the map's sum on the subset and the logit's drop when the
                              subset is set to the baseline
    sensitivity               Yeh et al. 2019 (max- and avg-sensitivity). lower is better:
                              ||a(x + u) - a(x)|| / ||a(x)||, u ~ U[-lower_bound, lower_bound] per pixel
    local_lipschitz           Alvarez-Melis & Jaakkola 2018. lower is better: max over x' = x + N(0,
                              std^2) of ||n(a(x)) - n(a(x'))|| / ||x - x'||
    sparseness                Chalasani et al. 2020. higher is better: the Gini index of |a|
    complexity                Bhatt et al. 2020. lower is better: the entropy of |a| / sum |a|
    random_logit              Sixt et al. 2020. lower is better: SSIM of the map of the target and the
                              map of a random other class (flattened, as Quantus does)
"""
from __future__ import annotations

import numpy as np

#: The quantities every metric keeps from Quantus 0.6.0 (written to result.json).
QUANTUS_DEFAULTS = {
    # faithfulness/faithfulness_correlation.py: nr_runs=100, subset_size=224, perturb_baseline="black"
    # (the image's minimum, helpers/utils.get_baseline_dict), similarity correlation_pearson,
    # normalise=True (normalise_by_max), abs=False, softmax=False (logits)
    "faithfulness_correlation": {"nr_runs": 100, "subset_size": 224, "perturb_baseline": "black",
                                 "similarity": "pearson", "normalise": True, "abs": False, "softmax": False},
    # robustness/max_sensitivity.py, avg_sensitivity.py: nr_samples=200, lower_bound=0.2, upper_bound=None
    # (batch_uniform_noise: U[-0.2, 0.2] added to every pixel, not clipped), similarity difference,
    # norm_numerator = norm_denominator = fro_norm (the denominator is ||a(x)||), normalise=False, abs=False
    "sensitivity": {"nr_samples": 200, "lower_bound": 0.2, "upper_bound": None, "norm_numerator": "fro",
                    "norm_denominator": "fro (of the map)", "normalise": False, "abs": False},
    # robustness/local_lipschitz_estimate.py: nr_samples=200, perturb_mean=0.0, perturb_std=0.1
    # (batch_gaussian_noise, not clipped), lipschitz_constant with distance_euclidean both ways
    # (eps 1e-10 in the denominator), normalise=True, abs=False
    "local_lipschitz": {"nr_samples": 200, "perturb_mean": 0.0, "perturb_std": 0.1, "norm_numerator": "euclidean",
                        "norm_denominator": "euclidean", "normalise": True, "abs": False},
    # complexity/sparseness.py: abs=True, normalise=True; Gini with 1e-7 added to every value
    "sparseness": {"abs": True, "normalise": True, "epsilon": 1e-7},
    # complexity/complexity.py: abs=True, normalise=True; -sum p log(p + 1e-12), p = |a| / sum |a|
    "complexity": {"abs": True, "normalise": True, "epsilon": 1e-12},
    # randomisation/random_logit.py: seed=42 (np.random.seed, then randint(0, classes - 1)), similarity
    # ssim (skimage structural_similarity, win_size None: 7, data_range max - min of both), normalise=True,
    # abs=False; num_classes: the model's (Quantus' 1000 is ImageNet's)
    "random_logit": {"seed": 42, "similarity": "ssim", "win_size": 7, "normalise": True, "abs": False},
}


def flat(a) -> np.ndarray:
    """(N, ...) -> (N, F) float64."""
    a = np.asarray(a, np.float64)
    return a.reshape(len(a), -1)


def normalise_by_max(a) -> np.ndarray:
    """Each map divided by its own largest |value|; an all-zero map stays zero. Quantus 0.6 calls
    normalise_by_max without axes, so one max over every map of the call: the same for one image
    per call (benchmarks/check_quantus.py calls it so); only local Lipschitz and random-logit, which
    compare two maps, depend on the difference."""
    a = flat(a)
    top = np.abs(a).max(axis=1, keepdims=True)
    return np.divide(a, top, out=np.zeros_like(a), where=top > 0)


def prepared(a, normalise: bool, absolute: bool) -> np.ndarray:
    """Quantus' preprocessing of a batch of maps: normalise, then abs; (N, F)."""
    a = normalise_by_max(a) if normalise else flat(a)
    return np.abs(a) if absolute else a


def _pearson(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of (N, R) arrays; NaN where a row is constant (as scipy)."""
    u = u - u.mean(axis=1, keepdims=True)
    v = v - v.mean(axis=1, keepdims=True)
    den = np.sqrt((u * u).sum(axis=1) * (v * v).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (u * v).sum(axis=1) / np.where(den > 0, den, 1), np.nan)


def faithfulness_correlation(predict, images, targets, maps, *, nr_runs: int = 100, subset_size: int = 224,
                             normalise: bool = True, absolute: bool = False, seed: int = 0,
                             images_per_call: int = 16):
    """(N,) Pearson correlation, over `nr_runs` random subsets of `subset_size` pixels per image, of
    the map's sum on the subset and logit(x) - logit(x with the subset set to the image's minimum).
    predict: images (M, H, W, C) -> logits (M, K). maps (N, H, W): one value per pixel (all the
    pixel's channels are set to the baseline together). All runs of `images_per_call` images go
    through `predict` in one call.

    maps may also be a dict {method: (N, H, W)}: then a dict {method: (N,)} comes back. The subsets
    are drawn from `seed` alone, so every method's logit drops are the same forward passes: they run
    once for all methods (five methods at 224 px: 400 MobileNetV2 passes an image instead of 2,000),
    and each method's scores are bit-equal to a call with its maps alone."""
    images = np.asarray(images, np.float32)
    n, pixels = len(images), images.shape[1] * images.shape[2]
    if not 1 <= subset_size <= pixels:
        raise ValueError(f"subset_size must be in [1, {pixels}], got {subset_size}")
    single = not isinstance(maps, dict)
    prepared_maps = {k: prepared(v, normalise, absolute) for k, v in ({None: maps} if single else maps).items()}
    targets = np.asarray(targets, np.int64)
    rng = np.random.default_rng(seed)
    out = {k: np.empty(n) for k in prepared_maps}
    for start in range(0, n, images_per_call):
        chunk = images[start:start + images_per_call]
        m = len(chunk)
        picks = np.stack([np.stack([rng.choice(pixels, subset_size, replace=False) for _ in range(nr_runs)])
                          for _ in range(m)])                                        # (m, runs, subset)
        masks = np.zeros((m, nr_runs, pixels), bool)
        np.put_along_axis(masks, picks, True, axis=2)
        masks = masks.reshape((m, nr_runs) + chunk.shape[1:3] + (1,))
        black = chunk.min(axis=(1, 2, 3)).reshape(m, 1, 1, 1, 1)                    # Quantus' "black"
        copies = np.where(masks, black, chunk[:, None]).astype(np.float32)
        logits = predict(np.concatenate([chunk, copies.reshape((-1,) + chunk.shape[1:])]))
        rows = targets[start:start + m]
        clean = logits[np.arange(m), rows].astype(np.float64)
        perturbed = logits[m:].reshape(m, nr_runs, -1)[np.arange(m), :, rows].astype(np.float64)
        for key, a in prepared_maps.items():
            sums = np.take_along_axis(a[start:start + m, None, :].repeat(nr_runs, axis=1), picks, axis=2).sum(axis=2)
            out[key][start:start + m] = _pearson(sums, clean[:, None] - perturbed)
    return out[None] if single else out


def uniform_copies(images, nr_samples: int = 200, lower_bound: float = 0.2, upper_bound: float | None = None,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """(N, S, ...) copies of each image plus noise U[-lower_bound, lower_bound] on every pixel
    (U[lower_bound, upper_bound] when upper_bound is set), not clipped: quantus.batch_uniform_noise."""
    rng = rng or np.random.default_rng(0)
    images = np.asarray(images, np.float32)
    low, high = (-lower_bound, lower_bound) if upper_bound is None else (lower_bound, upper_bound)
    return (images[:, None] + rng.uniform(low, high, (len(images), nr_samples) + images.shape[1:])).astype(np.float32)


def gaussian_copies(images, nr_samples: int = 200, mean: float = 0.0, std: float = 0.1,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """(N, S, ...) copies of each image plus N(mean, std^2) on every pixel, not clipped:
    quantus.batch_gaussian_noise."""
    rng = rng or np.random.default_rng(0)
    images = np.asarray(images, np.float32)
    return (images[:, None] + rng.normal(mean, std, (len(images), nr_samples) + images.shape[1:])).astype(np.float32)


def sensitivity(maps, perturbed_maps, normalise: bool = False, absolute: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(max-sensitivity (N,), avg-sensitivity (N,)): over the S copies, the max and the mean of
    ||a(x') - a(x)||_2 / ||a(x)||_2. maps (N, ...), perturbed_maps (N, S, ...)."""
    n, s = np.shape(perturbed_maps)[:2]
    a = prepared(maps, normalise, absolute)
    b = prepared(np.reshape(perturbed_maps, (n * s, -1)), normalise, absolute).reshape(n, s, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.linalg.norm(b - a[:, None], axis=-1) / np.linalg.norm(a, axis=-1)[:, None]
    return ratio.max(axis=1), ratio.mean(axis=1)


def local_lipschitz(maps, perturbed_maps, images, perturbed_images, normalise: bool = True,
                    absolute: bool = False) -> np.ndarray:
    """(N,) max over the S copies of ||a(x) - a(x')||_2 / (||x - x'||_2 + 1e-10), the maps normalised
    by their max |value| first (Quantus' default). perturbed_*: (N, S, ...)."""
    n, s = np.shape(perturbed_maps)[:2]
    a = prepared(maps, normalise, absolute)
    b = prepared(np.reshape(perturbed_maps, (n * s, -1)), normalise, absolute).reshape(n, s, -1)
    x = flat(images)
    y = np.asarray(perturbed_images, np.float64).reshape(n, s, -1)
    return (np.linalg.norm(a[:, None] - b, axis=-1) / (np.linalg.norm(x[:, None] - y, axis=-1) + 1e-10)).max(axis=1)


def sparseness(maps, normalise: bool = True, absolute: bool = True) -> np.ndarray:
    """(N,) Gini index of each map's values (|a| + 1e-7, sorted): 0 for a uniform map, near 1 when
    one pixel holds everything."""
    a = np.sort(prepared(maps, normalise, absolute) + 1e-7, axis=1)
    f = a.shape[1]
    k = np.arange(1, f + 1)
    return ((2 * k - f - 1) * a).sum(axis=1) / (f * a.sum(axis=1))


def complexity(maps, normalise: bool = True, absolute: bool = True) -> np.ndarray:
    """(N,) entropy (nats) of p = |a| / sum |a|: log(F) for a uniform map, 0 for one pixel."""
    a = prepared(maps, normalise, absolute)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = a / np.abs(a).sum(axis=1, keepdims=True)
    return -(p * np.log(p + 1e-12)).sum(axis=1)


def off_classes(targets, classes: int, seed: int = 42) -> np.ndarray:
    """(N,) a random class other than each target, drawn as quantus.RandomLogit draws one batch:
    np.random.seed(seed), k = randint(0, classes - 1, N), the k-th class of those left."""
    targets = np.asarray(targets, np.int64)
    k = np.random.RandomState(seed).randint(0, classes - 1, len(targets))
    return k + (k >= targets)


def ssim(a, b, win_size: int | None = None) -> np.ndarray:
    """(N,) skimage structural_similarity of each pair of flattened maps, data_range the max - min
    of the pair (quantus.functions.similarity_func.ssim)."""
    from skimage.metrics import structural_similarity

    out = []
    for u, v in zip(flat(a), flat(b)):
        both = np.concatenate([u, v])
        out.append(structural_similarity(u, v, win_size=win_size, data_range=both.max() - both.min()))
    return np.array(out, np.float64)


def random_logit(maps, off_maps, normalise: bool = True, absolute: bool = False) -> np.ndarray:
    """(N,) SSIM of the target's map and the map of a random other class (off_classes)."""
    return ssim(prepared(maps, normalise, absolute), prepared(off_maps, normalise, absolute))
