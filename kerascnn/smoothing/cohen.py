"""Randomized smoothing, as locuslab/smoothing `code/core.py` runs it, batched on the model.

    counts   how often the base model predicts each class under Gaussian noise: (N, K) per image,
             sampled in one compiled call per block of images x samples that fits the batch
    certify  n0 samples pick the top class cA; n more bound its probability from below (pA_lower,
             one-sided Clopper-Pearson at level alpha); pA_lower < 1/2 abstains, else the L2 radius
             is sigma * Phi^-1(pA_lower)
    predict  the top two counts of n samples; abstain unless a two-sided binomial test rejects
             "equally likely" at level alpha

Pixels are in [0, 1] and the noise is added there, unclipped, as Cohen et al. add it before the
model's own normalisation; sigma is in those pixel units.
"""
from __future__ import annotations

import math

import numpy as np

from kerascnn.attacks.loop import as_batch, cached, model_shape
from kerascnn.errors import BadValue
from kerascnn.model.batching import batch_size as fitting

ABSTAIN = -1


#: The arithmetic of the sampling: the model as it is, or its bfloat16 copy (faster on CPUs with
#: AVX512_BF16, measured in README's "Certified robustness"; the certificate is then the copy's).
PRECISIONS = ("fp32", "bf16")


def check(sigma: float, n0: int | None = None, n: int | None = None, alpha: float | None = None,
          precision: str = "fp32") -> None:
    """BadValue (one line, naming the parameter) for settings no certificate can use."""
    if precision not in PRECISIONS:
        raise BadValue("precision", f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise BadValue("sigma", f"must be a number > 0, got {sigma}")
    for name, value in (("n0", n0), ("n", n)):
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise BadValue(name, f"must be a whole number of at least 1, got {value}")
    if n0 is not None and n is not None and n < n0:
        raise BadValue("n", f"must be at least n0 ({n0}), got {n}")
    if alpha is not None and not (math.isfinite(alpha) and 0 < alpha < 1):
        raise BadValue("alpha", f"must be strictly between 0 and 1, got {alpha}")


def _compile(model, classes: int):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32),
                                  tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.float32),
                                  tf.TensorSpec((2,), tf.int64)])
    def block(x, samples, sigma, seed):
        """(m, K) counts of the predictions of `samples` noisy copies of each of the m images."""
        copies = tf.repeat(x, samples, axis=0)
        noisy = copies + sigma * tf.random.stateless_normal(tf.shape(copies), seed)
        predicted = tf.argmax(model(noisy, training=False), axis=1, output_type=tf.int32)
        one_hot = tf.one_hot(tf.reshape(predicted, [tf.shape(x)[0], samples]), classes, dtype=tf.int32)
        return tf.reduce_sum(one_hot, axis=1)

    return block


def counts(model, images: np.ndarray, num: int, sigma: float, *, seed: int = 0, stream: int = 0,
           batch_size: int | None = None, precision: str = "fp32", progress=None) -> np.ndarray:
    """(N, K) int64: for each image (N, H, W, C) in [0, 1], how many of `num` noisy copies the model
    predicts as each class. `stream` separates independent draws (selection, estimation).
    precision "bf16": the model's bfloat16 copy classifies the noisy images (the same noise; see
    kerascnn.model.twin.bfloat16_twin), "fp32" the model itself."""
    import tensorflow as tf

    shape, classes = model_shape(model)
    check(sigma, n=num, precision=precision)
    images = as_batch(images, shape, "images")
    if precision == "bf16":
        from kerascnn.model.twin import bfloat16_twin

        base = model
        model = cached(base, ("bfloat16 twin",), lambda: bfloat16_twin(base))
    block = cached(model, ("smoothing", classes), lambda: _compile(model, classes))
    batch = batch_size or fitting(model)
    out = np.zeros((len(images), classes), np.int64)
    if num >= batch:  # one image at a time, its samples in chunks of a batch
        for i, image in enumerate(images):
            done = 0
            while done < num:
                take = min(batch, num - done)
                key = tf.constant([seed, ((stream * 1_000_003 + i) * 1_000_003 + done) % (2 ** 62)], tf.int64)
                out[i] += block(image[None], tf.constant(take), tf.constant(sigma, tf.float32), key).numpy()[0]
                done += take
            if progress is not None:
                progress(i + 1, i + 1, len(images))
    else:  # several images a call, all their samples at once
        per_call = max(1, batch // num)
        for i in range(0, len(images), per_call):
            key = tf.constant([seed, (stream * 1_000_003 + i) % (2 ** 62)], tf.int64)
            out[i:i + per_call] = block(images[i:i + per_call], tf.constant(num), tf.constant(sigma, tf.float32),
                                        key).numpy()
            if progress is not None:
                progress(min(i + per_call, len(images)), min(i + per_call, len(images)), len(images))
    return out


def lower_confidence_bound(successes, trials: int, alpha: float) -> np.ndarray:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a binomial proportion: the alpha
    quantile of Beta(k, n - k + 1), 0 where k = 0 (statsmodels' proportion_confint(method="beta")
    at 2 alpha, which Cohen et al. call)."""
    from scipy.stats import beta

    k = np.asarray(successes, np.float64)
    return np.where(k > 0, beta.ppf(alpha, np.maximum(k, 1), trials - k + 1), 0.0)


def largest_radius(sigma: float, n: int, alpha: float) -> float:
    """The largest radius `certify` can give with n samples: the one when all n noisy samples agree
    (pA_lower = alpha^(1/n), Clopper-Pearson at k = n), sigma * Phi^-1(alpha^(1/n)). A radius at this
    value says that n bounds it, not that the image is that robust."""
    from scipy.stats import norm

    return float(sigma * norm.ppf(lower_confidence_bound(n, n, alpha)))


def certify(model, images: np.ndarray, sigma: float, *, n0: int = 100, n: int = 10_000, alpha: float = 0.001,
            seed: int = 0, batch_size: int | None = None, precision: str = "fp32", progress=None) -> dict:
    """CERTIFY for each image: {"prediction": (N,) class or ABSTAIN, "radius": (N,) L2 radius (0 when
    abstaining), "p_lower": (N,), "counts": (N, K) of the n estimation samples}."""
    from scipy.stats import norm

    check(sigma, n0, n, alpha, precision)
    selection = counts(model, images, n0, sigma, seed=seed, stream=0, batch_size=batch_size, precision=precision)
    top = selection.argmax(axis=1)
    estimation = counts(model, images, n, sigma, seed=seed, stream=1, batch_size=batch_size, precision=precision,
                        progress=progress)
    p_lower = lower_confidence_bound(estimation[np.arange(len(top)), top], n, alpha)
    certified = p_lower >= 0.5
    radius = np.where(certified, sigma * norm.ppf(np.clip(p_lower, 0.5, 1.0)), 0.0)
    return {"prediction": np.where(certified, top, ABSTAIN), "radius": radius, "p_lower": p_lower,
            "counts": estimation}


def predict(model, images: np.ndarray, sigma: float, *, n: int = 10_000, alpha: float = 0.001, seed: int = 0,
            batch_size: int | None = None, precision: str = "fp32") -> np.ndarray:
    """PREDICT for each image: (N,) the smoothed classifier's class, or ABSTAIN where the two top
    counts are not told apart by a two-sided binomial test at level alpha."""
    from scipy.stats import binomtest

    check(sigma, n=n, alpha=alpha, precision=precision)
    sampled = counts(model, images, n, sigma, seed=seed, stream=2, batch_size=batch_size, precision=precision)
    order = np.argsort(-sampled, axis=1, kind="stable")
    first, second = sampled[np.arange(len(order)), order[:, 0]], sampled[np.arange(len(order)), order[:, 1]]
    out = np.full(len(order), ABSTAIN, np.int64)
    for i, (a, b) in enumerate(zip(first, second)):
        if binomtest(int(a), int(a + b), 0.5).pvalue <= alpha:
            out[i] = order[i, 0]
    return out


def soft_smoothed(model, sigma: float, samples: int = 32):
    """The soft smoothed classifier as a Keras model: log of the softmax averaged over `samples`
    Gaussian draws per image (fresh at every call), the objective SmoothAdv (Salman et al. 2019)
    attacks. Its gradient is the EOT gradient of the smoothed classifier."""
    import keras
    import tensorflow as tf

    class Smoothed(keras.layers.Layer):
        def call(self, x):
            copies = tf.repeat(x, samples, axis=0)
            noisy = copies + sigma * tf.random.normal(tf.shape(copies))
            probabilities = tf.nn.softmax(tf.cast(model(noisy, training=False), tf.float32))
            mean = tf.reduce_mean(tf.reshape(probabilities, [-1, samples, probabilities.shape[-1]]), axis=1)
            return tf.math.log(mean + 1e-12)

    inputs = keras.Input(model.inputs[0].shape[1:])
    return keras.Model(inputs, Smoothed()(inputs), name=f"{model.name}_smoothed")
