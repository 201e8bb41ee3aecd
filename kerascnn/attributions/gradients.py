"""Attribution maps: which pixels raise the logit of one class. Numbers only (drawing: plots.explanations).

Every method takes a *logits* model (`Subject.logits_model`), images (N, H, W, C) float32 in [0, 1]
and targets (N,) (per image, the class whose logit is explained), and explains that logit:

    saliency              the gradient d logit / d x                            (Simonyan et al. 2014)
    smoothgrad            the gradient averaged over noisy copies x + N(0, sigma^2) (Smilkov et al. 2017)
    integrated-gradients  (x - b) * the mean gradient on the straight path from b to x, b black
                          (Sundararajan et al. 2017); midpoint rule with `ig_steps` points, so its sum
                          approaches logit(x) - logit(b) (completeness, checked in `completeness`)
    gradcam               ReLU(sum_c a_c A_c) with a_c the mean over positions of d logit / d A_c, A a
                          convolution layer's output, upsampled bilinearly to the image (Selvaraju et al. 2017)
    occlusion             the drop of the logit when a black `patch` x `patch` square covers the pixel,
                          averaged over the stride-1 positions covering it (Zeiler and Fergus 2014): the
                          grey-patch experiment's machinery with the same black baseline as the others

`pixel_maps` turns them into one (H, W) map per image: the sum over channels (for integrated
gradients that keeps completeness); Grad-CAM and occlusion have no channels. Every map is signed
but Grad-CAM's, which is >= 0 by construction. Gradients come from one tape (`_gradient_fn`, one
compiled function per model) called on batches of up to `BATCH` images: all noisy copies and all
path points of an image go through in the same calls.
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from kerascnn.errors import BadValue
from kerascnn.attributions.layer_gradients import layer_gradient_fn
from kerascnn.attributions.patches import map_stride_for, patch_positions, predict_occluded
from kerascnn.attributions.settings import ATTRIBUTION_SIDE, LABELS, METHODS, Settings, parse_methods  # noqa: F401
from kerascnn.model.memo import Memo, digest
from kerascnn.model.batching import batch_size
from kerascnn.model.predict import predict_logits

#: Images per gradient call: path points and noisy copies of several images share a call.
BATCH = 512

_GRADIENT_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------- the tape
def _gradient_fn(model):
    """A compiled function (x (N, H, W, C), targets (N,)) -> (chosen logits (N,), gradients like x), once per model."""
    import tensorflow as tf

    fn = _GRADIENT_FNS.get(model)
    if fn is None:
        @tf.function(reduce_retracing=True)
        def fn(x, targets):
            with tf.GradientTape() as tape:
                tape.watch(x)
                logits = tf.cast(model(x, training=False), tf.float32)
                chosen = tf.gather(logits, targets, batch_dims=1)
            return chosen, tape.gradient(chosen, x)  # images do not interact: the sum's gradient is per image
        _GRADIENT_FNS[model] = fn
    return fn


def _batch(model, limit: int | None = None) -> int:
    """Images per gradient call: `limit`, else at most BATCH, fewer for a model whose activations are large."""
    return limit or batch_size(model, gradients=True, cap=BATCH)


def gradients(model, images: np.ndarray, targets: np.ndarray, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(logit of each target (N,), d logit / d image (N, H, W, C)), `batch` images per call (None:
    as many as fit the memory budget, at most BATCH)."""
    fn = _gradient_fn(model)
    batch = batch or _batch(model)
    images = np.asarray(images, np.float32)
    targets = np.asarray(targets, np.int32)
    values, grads = [], []
    for i in range(0, len(images), batch):
        v, g = fn(images[i:i + batch], targets[i:i + batch])
        values.append(v.numpy())
        grads.append(g.numpy())
    return np.concatenate(values), np.concatenate(grads)


def _repeat_targets(targets, n: int) -> np.ndarray:
    return np.repeat(np.asarray(targets, np.int32), n)


# ---------------------------------------------------------------------------- the methods
def saliency(model, images, targets, batch: int | None = None) -> np.ndarray:
    """d logit / d x, signed: (N, H, W, C). For logits W x + b it is W's row of the target. `batch`:
    images per model call, here and below (None: `_batch`); copies and path points count as images."""
    return gradients(model, images, targets, batch)[1]


def _mean_gradient(model, images, targets, copies: int, batch: int | None, make) -> np.ndarray:
    """(N, H, W, C): per image, the mean gradient over the `copies` of it that make(chunk) returns
    (n, copies, H, W, C); as many images per call as their copies fit in `batch`."""
    per_call = max(1, _batch(model, batch) // copies)
    out = []
    for i in range(0, len(images), per_call):
        copied = make(images[i:i + per_call])
        grads = gradients(model, copied.reshape((-1,) + images.shape[1:]),
                          _repeat_targets(targets[i:i + per_call], copies), batch)[1]
        out.append(grads.reshape(copied.shape).mean(axis=1))
    return np.concatenate(out)


def smoothgrad(model, images, targets, samples: int = 32, noise: float = 0.15, seed: int = 0,
               batch: int | None = None) -> np.ndarray:
    """The gradient averaged over `samples` copies of each image plus Gaussian noise of std `noise`
    (not clipped, as in the paper): (N, H, W, C)."""
    rng = np.random.default_rng(seed)
    return _mean_gradient(model, np.asarray(images, np.float32), targets, samples, batch, lambda chunk: chunk[:, None]
                          + rng.normal(0.0, noise, (len(chunk), samples) + chunk.shape[1:]).astype(np.float32))


def integrated_gradients(model, images, targets, steps: int = 64, baseline: float = 0.0,
                         batch: int | None = None) -> np.ndarray:
    """(x - b) * mean of the gradients at b + alpha (x - b), alpha = (k + 1/2) / steps, k < steps:
    (N, H, W, C). Exact for a linear logit; otherwise its sum approaches logit(x) - logit(b)."""
    images = np.asarray(images, np.float32)
    alphas = ((np.arange(steps, dtype=np.float32) + 0.5) / steps).reshape((1, -1) + (1,) * (images.ndim - 1))
    return (images - baseline) * _mean_gradient(model, images, targets, steps, batch,  # path: (n, steps, H, W, C)
                                                lambda chunk: baseline + alphas * (chunk[:, None] - baseline))


def completeness(model, images, targets, attributions, baseline: float = 0.0) -> dict:
    """Integrated gradients' check: per image the attributions' sum against logit(x) - logit(baseline)."""

    images = np.asarray(images, np.float32)
    logits = predict_logits(model, np.concatenate([images, np.full_like(images, baseline)]))
    rows = np.arange(len(images))
    targets = np.asarray(targets)
    difference = logits[rows, targets].astype(np.float64) - logits[len(images) + rows, targets]
    total = np.asarray(attributions, np.float64).reshape(len(images), -1).sum(axis=1)
    error = np.abs(total - difference)
    return {"sum": total, "difference": difference, "error": error,
            "relative_error": error / np.maximum(np.abs(difference), 1e-12)}


def _weighted_maps(maps, grads):
    """Grad-CAM: the maps weighted by their gradient's spatial mean, summed over channels, rectified."""
    import tensorflow as tf

    weights = tf.reduce_mean(grads, axis=(1, 2))                                     # (N, c)
    return tf.nn.relu(tf.einsum("nhwc,nc->nhw", maps, weights))


def gradcam(model, images, targets, layer: str, upsample: bool = True, batch: int | None = None) -> np.ndarray:
    """Grad-CAM of `layer` (a layer of `model` with (h, w, c) output): (N, H, W) bilinearly upsampled
    to the image (half-pixel centres), or (N, h, w) at the layer's own size with upsample=False; >= 0."""
    import tensorflow as tf

    images = np.asarray(images, np.float32)
    fn = layer_gradient_fn(model, layer, _weighted_maps, "gradcam")
    targets = np.asarray(targets, np.int32)
    batch = _batch(model, batch)
    cams = np.concatenate([fn(images[i:i + batch], targets[i:i + batch]).numpy() for i in range(0, len(images), batch)])
    if not upsample or cams.shape[1:] == images.shape[1:3]:
        return cams
    return tf.image.resize(cams[..., None], images.shape[1:3], method="bilinear").numpy()[..., 0]


def occlusion(model, images, targets, patch: int, stride: int | None = None, batch: int | None = None,
              memo: "Memo | None" = None) -> np.ndarray:
    """Per pixel, the mean drop of the target's logit (clean minus occluded) over the positions of a
    black `patch` square that cover it: (N, H, W). Positive: covering it hurts. `stride` None: 1, or
    more on large images (explain.occlusion.map_stride_for, ATTRIBUTION_SIDE), so that the copies stay few.
    memo: the copies' logits (every class) are kept there per image, so that another target's map of the
    same image (the random-logit metric's) costs no forward pass."""

    out = []
    for image, target in zip(np.asarray(images, np.float32), np.asarray(targets)):
        # per pixel the drops of every covering position are averaged: 32 positions a side suffice
        step = stride or map_stride_for(image.shape, patch, side=ATTRIBUTION_SIDE)
        rows, cols = patch_positions(image.shape[0], image.shape[1], patch, step)

        def logits(image=image, rows=rows, cols=cols):
            return (predict_logits(model, image[None])[0], predict_occluded(model, image, rows, cols, patch, 0.0, None,
                                                                            batch))

        clean, occluded = logits() if memo is None else memo.get(("occlusion", digest(image), patch, step, batch),
                                                                 logits)
        drops = float(clean[target]) - occluded[:, target].astype(np.float64)
        total, count = np.zeros(image.shape[:2]), np.zeros(image.shape[:2])
        for r, c, drop in zip(rows, cols, drops):  # the patch at (r, c) covers [r, r + patch) x [c, c + patch)
            total[r:r + patch, c:c + patch] += drop
            count[r:r + patch, c:c + patch] += 1
        out.append((total / np.maximum(count, 1)).astype(np.float32))
    return np.stack(out)


# ---------------------------------------------------------------------------- all of them
@dataclass
class Maps:
    """The maps of several methods for the same images: maps[method] (N, H, W) float32 (channels summed);
    completeness of integrated gradients (see `completeness`) when it ran; seconds per method."""
    maps: dict
    completeness: dict | None = None
    seconds: dict = field(default_factory=dict)


def pixel_maps(attributions: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (N, H, W), the sum over channels; (N, H, W) is returned as it is."""
    attributions = np.asarray(attributions, np.float32)
    return attributions.sum(axis=-1) if attributions.ndim == 4 else attributions


def explain(model, images, targets, settings: Settings, layer: str | None = None, memo: Memo | None = None) -> Maps:
    """Every method of `settings` on `images` (N, H, W, C) for `targets` (N,). `layer`: Grad-CAM's
    layer, already checked (None: needed only when gradcam is asked for). memo: the subject's Memo
    (only for its own logits model, never one that changes in place): the same call again returns
    copies of the first one's maps, and occlusion keeps its forward passes for other targets."""
    images = np.asarray(images, np.float32)
    targets = np.asarray(targets, np.int64)
    if memo is not None:
        found = memo.get(("explain", digest(images), targets.tobytes(), repr(settings), layer),
                         lambda: _explain(model, images, targets, settings, layer, memo))
        return Maps({m: v.copy() for m, v in found.maps.items()},
                    None if found.completeness is None else dict(found.completeness), dict(found.seconds))
    return _explain(model, images, targets, settings, layer, None)


def _explain(model, images, targets, settings: Settings, layer, memo) -> Maps:
    maps, seconds, check = {}, {}, None
    for method in settings.methods:
        begin = time.perf_counter()
        if method == "saliency":
            maps[method] = pixel_maps(saliency(model, images, targets))
        elif method == "smoothgrad":
            maps[method] = pixel_maps(smoothgrad(model, images, targets, settings.smoothgrad_samples,
                                                 settings.smoothgrad_noise, settings.seed))
        elif method == "integrated-gradients":
            attributions = integrated_gradients(model, images, targets, settings.ig_steps)
            maps[method] = pixel_maps(attributions)
            check = completeness(model, images, targets, attributions)
        elif method == "gradcam":
            if layer is None:
                raise BadValue("layer", "Grad-CAM needs a convolution layer")
            maps[method] = gradcam(model, images, targets, layer)
        else:
            maps[method] = occlusion(model, images, targets, settings.patch(images.shape[1:]),
                                     settings.stride(images.shape[1:]), memo=memo)
        seconds[method] = time.perf_counter() - begin
    return Maps(maps, check, seconds)


def gradcam_layer(subject, name: str | None) -> str:
    """The layer Grad-CAM reads: a convolution layer of the subject (None: the last), taken after its
    activation (the assignment's batch-norm blocks: conv2 -> conv2_relu). BadValue("layer") otherwise."""
    convs = subject.conv_layers()
    if name is None:
        name = subject.last_conv_layer()
    elif name not in convs:
        known = {layer.name for layer in subject.model.layers}
        what = "is not a convolution layer" if name in known else "is not a layer of the model"
        raise BadValue("layer", f"{name!r} {what}: choose from {', '.join(convs) or 'none (no convolution layers)'}")
    return subject.resolve_layer(name, "layer")
