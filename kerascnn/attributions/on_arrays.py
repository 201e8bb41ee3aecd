"""Attribution maps on arrays: `kc.attributions.saliency(model, x) -> maps`, one per image.

The model is the user's own keras.Model, read as kc.attacks reads it (a final softmax read through,
the input domain folded in: kerascnn.attacks.on_arrays.subject_of). Arguments shared by every method:

    model        a keras.Model image classifier (one input (H, W, C), one output of K classes)
    x            (N, H, W, C) float in [0, 1], or uint8 0-255 (divided by 255); (N, H, W) for one channel
    targets      (N,) int: the class whose logit each map explains (None: the model's prediction)
    batch_size   images per model call, noisy copies, path points and occluded copies included
                 (None: as many as fit the memory budget); it changes no map
    input_range, preprocess   what the model takes, when it is not read off the model (kerascnn.model.domain)

Each returns (N, H, W) float32 maps, signed but Grad-CAM's (>= 0); the gradient methods sum the
channels, as `kc.explain` draws them (`per_channel=True`: (N, H, W, C), shaped as x). The numbers
are kerascnn.attributions.gradients'; a bad argument raises kerascnn.errors.BadValue naming it.
"""
from __future__ import annotations

import math

import numpy as np

from kerascnn.attacks.on_arrays import as_classes, as_pixels, check_batch_size, check_count, subject_of
from kerascnn.attributions import gradients as methods
from kerascnn.errors import BadValue

__all__ = ["saliency", "smoothgrad", "integrated_gradients", "gradcam", "occlusion"]


def _inputs(model, x, targets, batch_size, input_range, preprocess):
    """(subject, pixels (N, H, W, C) in [0, 1], targets (N,) int64, batch_size), every one checked."""
    subject = subject_of(model, input_range, preprocess)
    pixels = as_pixels(x, subject.input_shape)
    batch_size = check_batch_size(batch_size)
    if targets is None:
        classes = subject.logits(pixels, batch_size).argmax(axis=1).astype(np.int64)
    else:
        classes = as_classes(targets, len(pixels), subject.num_classes, "targets")
    return subject, pixels, classes, batch_size


def _maps(attributions: np.ndarray, x, per_channel: bool) -> np.ndarray:
    """(N, H, W, C) -> the channels' sum (N, H, W), or as they are, shaped as x."""
    return attributions.reshape(np.shape(x)) if per_channel else methods.pixel_maps(attributions)


def _fraction(value, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not 0 <= value <= 1:
        raise BadValue(param, f"must be a number in [0, 1] (pixel units), got {value!r}")
    return float(value)


def saliency(model, x, targets=None, *, per_channel: bool = False, batch_size: int | None = None,
             input_range=None, preprocess=None) -> np.ndarray:
    """Saliency (Simonyan et al. 2014): the gradient of the target's logit with respect to the pixels.

    Arguments:
        per_channel: keep the channels (N, H, W, C) instead of summing them. The rest: see the module.
    Returns:
        (N, H, W) float32, signed: d logit / d x summed over the channels.
    Example:
        >>> maps = kc.attributions.saliency(model, x_test[:8])
    """
    subject, pixels, classes, size = _inputs(model, x, targets, batch_size, input_range, preprocess)
    return _maps(methods.saliency(subject.logits_model, pixels, classes, size), x, per_channel)


def smoothgrad(model, x, targets=None, *, samples: int = 32, noise: float = 0.15, seed: int = 0,
               per_channel: bool = False, batch_size: int | None = None, input_range=None,
               preprocess=None) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of each image.

    Arguments:
        samples: copies per image; noise: their Gaussian noise's std in pixel units; seed.
    Returns:
        (N, H, W) float32, signed (per_channel: (N, H, W, C)).
    Example:
        >>> maps = kc.attributions.smoothgrad(model, x_test[:8], samples=50)
    """
    samples = check_count(samples, "samples")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)) \
            or not math.isfinite(noise) or noise < 0:
        raise BadValue("noise", f"must be a number >= 0 (pixel units), got {noise!r}")
    seed = check_count(seed, "seed", 0)
    subject, pixels, classes, size = _inputs(model, x, targets, batch_size, input_range, preprocess)
    return _maps(methods.smoothgrad(subject.logits_model, pixels, classes, samples, float(noise), seed, size), x,
                 per_channel)


def integrated_gradients(model, x, targets=None, *, steps: int = 64, baseline: float = 0.0,
                         per_channel: bool = False, batch_size: int | None = None, input_range=None,
                         preprocess=None) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) from a plain baseline image, by the midpoint rule.

    Arguments:
        steps: gradient points on the path; baseline: its grey level in [0, 1] (0: black).
    Returns:
        (N, H, W) float32, signed; each map sums to about logit(x) - logit(baseline) (completeness).
    Example:
        >>> maps = kc.attributions.integrated_gradients(model, x_test[:8], steps=128)
    """
    steps = check_count(steps, "steps")
    baseline = _fraction(baseline, "baseline")
    subject, pixels, classes, size = _inputs(model, x, targets, batch_size, input_range, preprocess)
    return _maps(methods.integrated_gradients(subject.logits_model, pixels, classes, steps, baseline, size), x,
                 per_channel)


def gradcam(model, x, targets=None, *, layer: str | None = None, batch_size: int | None = None, input_range=None,
            preprocess=None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): a convolution layer's maps weighted by their mean gradient.

    Arguments:
        layer: the convolution layer's name (None: the last one), read after its activation.
    Returns:
        (N, H, W) float32 >= 0, upsampled bilinearly from the layer's size to the image's.
    Example:
        >>> maps = kc.attributions.gradcam(model, x_test[:8], layer="conv2")
    """
    subject, pixels, classes, size = _inputs(model, x, targets, batch_size, input_range, preprocess)
    name = methods.gradcam_layer(subject, layer)
    return methods.gradcam(subject.logits_model, pixels, classes, name, batch=size)


def occlusion(model, x, targets=None, *, patch: int | None = None, stride: int | None = None,
              batch_size: int | None = None, input_range=None, preprocess=None) -> np.ndarray:
    """Occlusion (Zeiler and Fergus 2014): per pixel, how much the target's logit drops when a black
    square covers it, averaged over the square's positions that cover it.

    Arguments:
        patch: the square's side (None: a seventh of the image's smaller side); stride: between
            positions (None: 1, or more on images over 32 + patch pixels, so the copies stay few).
    Returns:
        (N, H, W) float32, signed: positive where covering the pixel lowers the logit.
    Example:
        >>> maps = kc.attributions.occlusion(model, x_test[:8], patch=4)
    """
    subject, pixels, classes, size = _inputs(model, x, targets, batch_size, input_range, preprocess)
    height, width = subject.input_shape[:2]
    patch = methods.Settings(occlusion_patch=patch).patch(subject.input_shape) if patch is None else patch
    if check_count(patch, "patch") > min(height, width):
        raise BadValue("patch", f"{patch} is larger than the {height}x{width} image")
    stride = None if stride is None else check_count(stride, "stride")
    return methods.occlusion(subject.logits_model, pixels, classes, patch, stride, size)
