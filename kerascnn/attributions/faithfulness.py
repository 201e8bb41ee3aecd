"""Scores for attribution maps: deletion and insertion curves (does the map rank the pixels the
model needs first?) and the model-randomisation check (does the map depend on the weights at all?).
Numbers only; the experiment is kerascnn.experiments.faithfulness.

Deletion (Petsiuk et al. 2018): set the pixels to the baseline (black, as integrated gradients'
baseline) in the order of the map, most positive first, `steps` equal chunks, and follow P(class);
the area under that curve (fraction of pixels on x, in [0, 1]) is low when the map put the pixels
that matter first. Insertion starts from the baseline and restores pixels in the same order; its
area is high for a good map. Step 0 of deletion and the last step of insertion are the image
itself. Pixels of equal value (Grad-CAM's zeros, the black background's zero occlusion drop) are
ordered at random (seeded), so that ties are not broken by position. A random order is the
baseline a map must beat.

Randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"): re-initialise the layers
with weights from the output down, cumulatively (each layer from its own initializer, as a fresh
copy of it would be built), recompute the maps and compare each with the trained model's by the
Spearman rank correlation of |map|. A map that stays the same explains the input, not the model.
"""
from __future__ import annotations

import numpy as np

from kerascnn.model.predict import predict_logits, softmax


# ---------------------------------------------------------------------------- deletion and insertion
def pixel_order(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat pixel indices of an (H, W) map, largest value first, ties in random order."""
    flat = np.asarray(values, np.float64).ravel()
    return np.lexsort((rng.random(flat.size), -flat))


def chunk_counts(pixels: int, steps: int) -> np.ndarray:
    """Pixels removed (or restored) after each of the steps + 1 points: round(s / steps * pixels)."""
    return np.round(np.arange(steps + 1) / steps * pixels).astype(np.int64)


def curves(model, images: np.ndarray, targets: np.ndarray, orders: dict, steps: int = 20,
           baseline: float = 0.0) -> tuple[dict, dict]:
    """Deletion and insertion curves, each {name: (N, steps + 1) P(target)}, for pixel `orders`
    {name: (N, H*W) flat indices, most important first}. images (N, H, W, C) in [0, 1].
    Each image's copies for every order go through the model in one call."""

    images = np.asarray(images, np.float32)
    n, height, width = images.shape[:3]
    counts = chunk_counts(height * width, steps)
    names = list(orders)
    deletion = {k: np.zeros((n, steps + 1)) for k in names}
    insertion = {k: np.zeros((n, steps + 1)) for k in names}
    for i in range(n):
        masks = []                       # per order: (steps + 1, H, W) True where the pixel is removed
        for name in names:
            rank = np.empty(height * width, np.int64)
            rank[orders[name][i]] = np.arange(height * width)
            masks.append((rank[None] < counts[:, None]).reshape(steps + 1, height, width, 1))
        masks = np.concatenate(masks)
        image = images[i][None]
        copies = np.concatenate([np.where(masks, np.float32(baseline), image), np.where(masks, image, np.float32(baseline))])
        p = softmax(predict_logits(model, copies))[:, targets[i]].reshape(2, len(names), steps + 1)
        for j, name in enumerate(names):
            deletion[name][i], insertion[name][i] = p[0, j], p[1, j]
    return deletion, insertion


def area(curve: np.ndarray) -> np.ndarray:
    """Area under curves (..., steps + 1) sampled at 0, 1/steps, ..., 1 (trapezoid rule)."""
    curve = np.asarray(curve, np.float64)
    return (curve[..., :-1] + curve[..., 1:]).sum(axis=-1) / (2 * (curve.shape[-1] - 1))


# ---------------------------------------------------------------------------- randomisation
def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values` along the last axis, ties given their mean rank."""
    values = np.asarray(values, np.float64)
    flat = values.reshape(-1, values.shape[-1])
    out = np.empty_like(flat)
    for row, v in enumerate(flat):
        order = np.argsort(v, kind="stable")
        sorted_v = v[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_v)) + 1]
        ends = np.r_[starts[1:], len(v)]
        mean_rank = (starts + ends + 1) / 2.0          # ranks start..end-1 (0-based) -> mean, 1-based
        out[row, order] = np.repeat(mean_rank, ends - starts)
    return out.reshape(values.shape)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of a and b (..., n) along the last axis (0 where one is constant)."""
    ra, rb = ranks(a), ranks(b)
    ra = ra - ra.mean(axis=-1, keepdims=True)
    rb = rb - rb.mean(axis=-1, keepdims=True)
    scale = np.sqrt((ra ** 2).sum(axis=-1) * (rb ** 2).sum(axis=-1))
    return np.where(scale > 0, (ra * rb).sum(axis=-1) / np.where(scale > 0, scale, 1.0), 0.0)


def weighted_layers(model) -> list[str]:
    """Names of the layers with weights, from the output down (the order of re-initialisation)."""
    return [layer.name for layer in reversed(model.layers) if layer.weights]


def randomised_models(model, seed: int = 0):
    """Yields (layer name, copy of `model`) with that layer and every one above it re-initialised,
    one more layer each time, from the output down. The copy is one model changed in place."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    keras.utils.set_random_seed(seed)  # the initializers draw from Keras' global seed
    for name in weighted_layers(copy):
        layer = copy.get_layer(name)
        fresh = type(layer).from_config(layer.get_config())
        fresh.build(layer.input.shape)
        layer.set_weights(fresh.get_weights())
        yield name, copy
