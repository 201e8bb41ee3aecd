"""A universal perturbation: one noise, fitted on many training images at once, that pushes any image
towards a target class (Moosavi-Dezfooli et al. 2017 asked the question; this fits it the way of
Shafahi et al. 2020, "Universal adversarial training": stochastic gradient over batches of images,
the noise projected back onto the eps-ball after every step).

Each step takes a batch of the fitting images, adds the noise (keeping pixels in [0, 1]), and moves
the noise against the gradient of the mean cross-entropy to the target over the batch, by a step of
`lr` * eps in the ball's steepest direction (sign for linf, unit L2 direction for l2), then
`clip_eta`. The step decays along a cosine over the epochs. The images it is measured on must be
others (the test split): `attacks.universal` measures a noise on any images.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from kerascnn.attacks.fgm import check_eps, check_norm, clip_eta, cross_entropy, direction
from kerascnn.attacks.loop import Progress, _tape, as_batch, cached, check_class, model_shape
from kerascnn.errors import BadValue
from kerascnn.model.predict import predict_logits


@dataclass
class UniversalFit:
    """The fitted noise and how it went."""
    noise: np.ndarray        # (H, W, C) float32, within eps of zero in `norm`
    target: int
    norm: str
    eps: float
    fit_fraction: list       # per epoch: the fraction of the fitting images predicted as the target
    seconds: float
    settings: dict


def fit_universal(model, images: np.ndarray, target: int, *, eps: float, norm: str = "linf", epochs: int = 10,
                  batch_size: int = 100, lr: float = 0.1, seed: int = 0,
                  progress: Progress | None = None) -> UniversalFit:
    """One noise (H, W, C) with norm <= eps that makes the model predict `target` for as many of
    `images` (N, H, W, C) in [0, 1] as it can. lr: the first step, as a fraction of eps."""
    shape, num_classes = model_shape(model)
    check_class(target, num_classes, "target")
    check_norm(norm)
    eps = check_eps(eps)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise BadValue(name, f"must be a whole number of at least 1, got {value}")
    if not (math.isfinite(lr) and lr > 0):
        raise BadValue("lr", f"must be a positive number, got {lr}")
    images = as_batch(images, shape, "images")
    step = cached(model, ("universal", norm), lambda: _compile(model, norm))
    rng = np.random.default_rng(seed)
    noise = np.zeros((1,) + tuple(shape), np.float32)
    batches = -(-len(images) // batch_size)
    total, done, history = epochs * batches, 0, []
    begin = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        for b in range(batches):
            size = lr * eps * (1 + math.cos(math.pi * done / total)) / 2
            chosen = images[order[b * batch_size:(b + 1) * batch_size]]
            noise = step(chosen, noise, np.int32(target), np.float32(size), np.float32(eps)).numpy()
            done += 1
        history.append(float(np.mean(_predicted(model, np.clip(images + noise, 0, 1)) == target)))
        if progress is not None:
            progress(epoch + 1, int(round(history[-1] * len(images))), len(images))
    settings = {"method": "SGD over batches with projection (Shafahi et al. 2020)", "norm": norm, "eps": eps,
                "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "fit_images": len(images),
                "loss": "mean cross-entropy to the target"}
    return UniversalFit(noise[0], int(target), norm, eps, history, time.perf_counter() - begin, settings)


def _compile(model, norm: str):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(images, noise, target, size, eps):
        noisy = tf.clip_by_value(images + noise, 0.0, 1.0)
        targets = tf.fill(tf.shape(images)[:1], target)
        _, _, grad = _tape(model, noisy, cross_entropy(targets))
        # d noisy / d noise is 1 where the sum was not clipped; at or past a bound it counts only where
        # the descent step points back inside: brighten a black pixel (grad < 0), darken a white one.
        # (A strict (0, 1) mask froze every pixel black in all fitting images at exactly 0: issue 22.)
        summed = images + noise
        inside = tf.cast(((summed > 0.0) | (grad < 0)) & ((summed < 1.0) | (grad > 0)), grad.dtype)
        total = tf.reduce_sum(grad * inside, axis=0, keepdims=True)
        return clip_eta(noise - size * direction(total, norm), norm, eps)

    return step


def _predicted(model, images: np.ndarray) -> np.ndarray:

    return predict_logits(model, images).argmax(axis=1)
