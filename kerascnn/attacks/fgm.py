"""The fast gradient method (Goodfellow et al. 2015: FGSM, the L-infinity form; Miyato et al. 2017:
the L2 form) and the projection onto an eps-ball: the two pieces every eps-bounded attack is made of.

    fgm_step  x + eps * sign(grad) (linf) or x + eps * grad / ||grad||_2 (l2), back into [0, 1]:
              the gradient of the cross-entropy to `labels`, ascended (untargeted) or descended
              (targeted)
    clip_eta  the perturbation projected onto the eps-ball of its norm (clipped for linf, rescaled
              for l2)

PGD (pgd.py) is a loop of `fgm_step` + `clip_eta`, as cleverhans' projected_gradient_descent is of
fast_gradient_method and clip_eta. These work on TensorFlow tensors inside compiled functions (the
attacks and adversarial training call them); `fgm` is the batched function on arrays. eps may be one
number or one per image, so that all the eps of a robustness curve go through the model as one batch.
"""
from __future__ import annotations

import math
import time

import numpy as np

from kerascnn.attacks.bounded_results import bounded_result
from kerascnn.attacks.loop import _tape, as_batch, cached, model_shape
from kerascnn.errors import BadValue
from kerascnn.model.batching import batch_size as fitting

#: The threat models: the largest pixel change, or the Euclidean length of the change (pixels in [0, 1]).
NORMS = ("linf", "l2")
#: Keeps a zero gradient or perturbation from dividing by zero.
TINY = 1e-12


# ---------------------------------------------------------------------------- argument checks
def check_norm(norm) -> str:
    if norm not in NORMS:
        raise BadValue("norm", f"must be one of {', '.join(NORMS)}, got {norm!r}")
    return norm


def check_eps(eps, param: str = "eps") -> float:
    """A ball radius: a finite number >= 0 (BadValue otherwise)."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) \
            or not math.isfinite(eps) or eps < 0:
        raise BadValue(param, f"must be a finite number >= 0, got {eps}")
    return float(eps)


def check_epsilons(values, param: str = "eps") -> tuple[float, ...]:
    """One or more radii (a list, or text like '0,0.1,0.3') -> sorted distinct floats, each checked."""
    if isinstance(values, str):
        from kerascnn.lists import split_list

        values = split_list(values, param)  # '0.1,', ',0.1', ',' and '0.1,,0.3' are refused there
    items = np.atleast_1d(np.asarray(values, dtype=object)).tolist()
    for i, v in enumerate(items):  # text items ('0.1' from the command line) read as numbers
        try:
            items[i] = float(v) if isinstance(v, str) else v
        except ValueError:
            raise BadValue(param, f"{v!r} is not a number: give numbers separated by commas, e.g. 0,0.1,0.3") from None
    values = [check_eps(v, param) for v in items]
    if not values:
        raise BadValue(param, "is empty: give at least one radius")
    return tuple(sorted(set(values)))


def per_image_eps(eps, count: int, param: str = "eps") -> np.ndarray:
    """One radius, or one per image -> (count,) float32, each checked."""
    array = np.asarray(eps, np.float64)
    if array.ndim == 0:
        array = np.full(count, check_eps(float(array), param))
    elif array.shape != (count,):
        raise BadValue(param, f"must be one number or one per image ({count}), got shape {array.shape}")
    else:
        for value in array:
            check_eps(float(value), param)
    return array.astype(np.float32)


# ---------------------------------------------------------------------------- tensors
def per_image(value, x):
    """A scalar or (N,) tensor -> shaped to broadcast over x (N, H, W, C) images."""
    import tensorflow as tf

    value = tf.cast(value, x.dtype)
    return tf.reshape(value, [-1] + [1] * (len(x.shape) - 1)) if len(value.shape) else value


def _axes(x) -> list[int]:
    return list(range(1, len(x.shape)))


def norm_of(delta, norm: str):
    """(N,) the linf or l2 length of each perturbation."""
    import tensorflow as tf

    if norm == "linf":
        return tf.reduce_max(tf.abs(delta), axis=_axes(delta))
    return tf.sqrt(tf.reduce_sum(tf.square(delta), axis=_axes(delta)))


def direction(grad, norm: str):
    """The steepest unit step for `norm`: sign(grad) (linf) or grad / ||grad||_2 (l2)."""
    import tensorflow as tf

    if norm == "linf":
        return tf.sign(grad)
    length = tf.sqrt(tf.maximum(tf.reduce_sum(tf.square(grad), axis=_axes(grad), keepdims=True), TINY))
    return grad / length


def clip_eta(eta, norm: str, eps):
    """eta projected onto the ball {||eta|| <= eps} of `norm` (eps: a scalar or one per image)."""
    import tensorflow as tf

    eps = per_image(eps, eta)
    if norm == "linf":
        return tf.clip_by_value(eta, -eps, eps)
    length = per_image(norm_of(eta, "l2"), eta)
    return eta * tf.minimum(1.0, eps / tf.maximum(length, TINY))


def cross_entropy(labels):
    """The objective of fgm and pgd: the cross-entropy of each image to its label (or target)."""
    import tensorflow as tf

    return lambda logits, x: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def fgm_step(model, x, labels, eps, norm: str, targeted: bool = False):
    """One FGM step from x (N, H, W, C) in [0, 1]: (the stepped images in [0, 1], the logits of x).

    Untargeted: ascends the cross-entropy to `labels` (the true classes); targeted: descends it to
    `labels` (the targets).
    """
    import tensorflow as tf

    logits, _, grad = _tape(model, x, cross_entropy(labels))
    sign = -1.0 if targeted else 1.0
    return tf.clip_by_value(x + sign * per_image(eps, x) * direction(grad, norm), 0.0, 1.0), logits


# ---------------------------------------------------------------------------- on arrays
def fgm(model, images: np.ndarray, labels, eps, *, norm: str = "linf", targeted: bool = False,
        batch_size: int | None = None):
    """FGM (FGSM for linf) on a batch: attacks.BoundedResult holding x + eps * direction(grad) in [0, 1].

    images (N, H, W, C) in [0, 1]; labels (N,): true classes, or targets when `targeted`; eps one
    radius or one per image. One step, no random start: the ball's surface is reached at once.
    """

    shape, num_classes = model_shape(model)
    check_norm(norm)
    originals = as_batch(images, shape, "images")
    labels = _labels(labels, len(originals), num_classes)
    radii = per_image_eps(eps, len(originals))
    batch_size = batch_size or fitting(model, gradients=True)
    step = cached(model, ("fgm", norm, bool(targeted)), lambda: _compile_fgm(model, norm, bool(targeted)))
    begin = time.perf_counter()
    out = np.concatenate([step(originals[i:i + batch_size], labels[i:i + batch_size], radii[i:i + batch_size]).numpy()
                          for i in range(0, len(originals), batch_size)])
    settings = {"norm": norm, "targeted": bool(targeted), "loss": "cross-entropy", "start": "the image itself"}
    return bounded_result(model, "fgm", norm, radii, originals, out, labels, targeted, None,
                          time.perf_counter() - begin, settings)


def fgm_curve(model, images: np.ndarray, labels, eps_values, *, norm: str = "linf", targeted: bool = False,
              batch_size: int | None = None):
    """fgm at every eps of a curve: attacks.BoundedResult over E x N images, eps-major, the layout of
    fgm(np.tile(images, (E, 1, 1, 1)), np.tile(labels, E), np.repeat(eps_values, N)).

    FGM takes one step from the image itself, so its direction does not depend on eps: the gradient
    is taken once per image here, not once per (image, eps) as on the tiled batch (a four-eps curve
    of a MobileNetV2 at 224 px: 4x fewer gradients). The step is then the same float32 arithmetic as
    fgm_step's, x + (sign * eps) * direction clipped to [0, 1]."""

    shape, num_classes = model_shape(model)
    check_norm(norm)
    originals = as_batch(images, shape, "images")
    labels = _labels(labels, len(originals), num_classes)
    values = np.atleast_1d(np.asarray(eps_values, np.float64))
    radii = per_image_eps(values, len(values))
    batch_size = batch_size or fitting(model, gradients=True)
    unit = cached(model, ("fgm-direction", norm, bool(targeted)), lambda: _compile_direction(model, norm, bool(targeted)))
    begin = time.perf_counter()
    steps = np.concatenate([unit(originals[i:i + batch_size], labels[i:i + batch_size]).numpy()
                            for i in range(0, len(originals), batch_size)])
    sign = np.float32(-1.0 if targeted else 1.0)
    out = np.concatenate([np.clip(originals + (sign * r) * steps, 0.0, 1.0) for r in radii])
    settings = {"norm": norm, "targeted": bool(targeted), "loss": "cross-entropy", "start": "the image itself",
                "gradients": "one per image for all eps"}
    return bounded_result(model, "fgm", norm, np.repeat(radii, len(originals)), np.tile(originals, (len(radii), 1, 1, 1)),
                          out, np.tile(labels, len(radii)), targeted, None, time.perf_counter() - begin, settings)


def _compile_direction(model, norm: str, targeted: bool):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def unit(x, labels):
        _, _, grad = _tape(model, x, cross_entropy(tf.cast(labels, tf.int32)))
        return direction(grad, norm)

    return unit


def _compile_fgm(model, norm: str, targeted: bool):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(x, labels, eps):
        return fgm_step(model, x, tf.cast(labels, tf.int32), eps, norm, targeted)[0]

    return step


def _labels(labels, count: int, num_classes: int) -> np.ndarray:
    array = np.asarray(labels).astype(np.int64).reshape(-1)
    if array.shape != (count,):
        raise BadValue("labels", f"must be one per image ({count}), got shape {np.shape(labels)}")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise BadValue("labels", f"must be classes 0-{num_classes - 1}")
    return array
