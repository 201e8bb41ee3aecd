"""Regularised feature visualisation, lucid's recipe (Olah, Mordvintsev, Schubert, "Feature
Visualization", Distill 2017; tensorflow/lucid `optvis`), scaled to small images.

Plain gradient ascent on the pixels (kerascnn.experiments.maximize) finds inputs full of
high-frequency patterns that the network answers to but a person does not see as the feature. Lucid
removes them with three things, all kept here:

- the image is not the pixels but a Fourier spectrum (lucid `param/spatial.py` `fft_image`): each
  coefficient scaled by 1 / max(frequency, 1 / side)^p and by sqrt(H W), the inverse real
  FFT divided by 4, so that one Adam step moves low frequencies as much as high ones (the pixel
  basis favours high frequencies: there are many more of them). Lucid's p is 1 on 224-pixel images;
  small images here take 1.5 (`decay_power`, measured);
- with 3 channels the colours are decorrelated (lucid `param/color.py`: the square root of ImageNet's
  colour covariance, `COLOR_SVD_SQRT`, normalised by its largest column norm) and a sigmoid maps the
  result into [0, 1]; one channel has no colours to decorrelate and only takes the sigmoid;
- at every step the image goes through a random transformation before the network sees it (lucid
  `transform.py` `standard_transforms`: pad 12 with grey, jitter 8, scale 0.9-1.1, rotate -10..10
  degrees, jitter 4, on 224-pixel images). Here the same as one bilinear affine warp with grey
  outside, keeping the model's input size: a shift of up to +-JITTER of each side (lucid's jitters of
  8 and 4 pixels together move its image by up to +-6 of 224 pixels), at least one pixel (on MNIST
  +-1 pixel, sub-pixel shifts interpolated), a scale in SCALES and an angle in ANGLES.

The optimiser is lucid's: Adam, learning rate 0.05, from a spectrum of N(0, 0.01) (a grey image).
Optionally (`diversity` > 1) several images per unit and lucid's diversity term (`objectives.py`
`diversity`): the mean cosine similarity between the images' Gram matrices of the layer's maps
(channels x channels, over positions), subtracted from each image's objective with weight DIVERSITY
times the objective's own size.
"""
from __future__ import annotations

import numpy as np

#: lucid param/color.py: the square root of ImageNet's colour correlation (columns: its SVD directions).
COLOR_SVD_SQRT = np.asarray([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
#: lucid's random transformations, as one affine warp: shift (a fraction of each side, at least 1 pixel),
#: scale factors and angles (degrees), each drawn uniformly per image and step.
JITTER, SCALES, ANGLES = 6 / 224, (0.9, 1.1), (-10.0, 10.0)
#: lucid's optimiser (Adam) and its start: spectrum coefficients N(0, SD).
LR, SD = 0.05, 0.01
#: The spectrum's decay power: lucid's 1 on its 224-pixel images, 1.5 on small ones (`decay_power`).
LUCID_SIDE, SMALL_SIDE, SMALL_DECAY = 224, 64, 1.5
#: The diversity term's weight, relative to each image's own objective (lucid's tutorials subtract 1e2
#: times the similarity from channel objectives of Inception; a logit of 50 and an activation of 0.5 need
#: weights a hundred times apart, so here the similarity costs this fraction of the objective's size).
DIVERSITY = 1.0
#: Half the Nyquist frequency, in cycles per pixel (Nyquist: 0.5).
HALF_NYQUIST = 0.25


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """lucid's `rfft2d_freqs`: the radial frequency (cycles / pixel) of each coefficient of an (h, w)
    real FFT (one more column for odd w, cut off after the inverse)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[: w // 2 + (2 if w % 2 else 1)]
    return np.sqrt(fx * fx + fy * fy)


def high_frequency_share(images: np.ndarray) -> np.ndarray:
    """(N,) the share of each image's spectral energy above half the Nyquist frequency: |FFT|^2 of the
    image with each channel's mean taken off, summed over the coefficients whose radial frequency
    sqrt(fx^2 + fy^2) exceeds 0.25 cycles per pixel, over the sum over all coefficients (channels
    together). Near 0 for a smooth image, about 0.80 for white noise (the part of the square
    [-0.5, 0.5]^2 outside the circle of radius 0.25: 1 - pi / 16), 0 for a uniform image (no energy)."""
    x = np.asarray(images, np.float64)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2                # (N, H, W, C)
    h, w = x.shape[1:3]
    radial = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2)
    total = power.sum(axis=(1, 2, 3))
    high = power[:, radial > HALF_NYQUIST].sum(axis=(1, 2))
    return np.where(total > 0, high / np.where(total > 0, total, 1.0), 0.0)


def decay_power(h: int, w: int) -> float:
    """The spectrum's decay power for an (h, w) image: lucid's 1 from its 224-pixel images up, SMALL_DECAY
    up to SMALL_SIDE pixels, linear in log(side) between. On a small image 1 / f spans only the side
    (28 on MNIST against 224 in lucid) and the images keep high frequencies that 1.5 removes at the same
    activation, measured with 512 steps on conv2 (plain's high-frequency share: 0.35 on the shipped
    cnn, 0.18 on `benchmarks/bench_lucid.py`'s RGB model of 32 pixels): the cnn, power 1: a share of 0.20
    at 86% of plain's activation, 1.5: 0.18 at 87%, 2: 0.16 at 76%; the RGB model, power 1: 0.23 at 84%,
    1.5: 0.12 at 90%, 2: 0.10 at 98%."""
    side = max(h, w)
    if side <= SMALL_SIDE:
        return SMALL_DECAY
    if side >= LUCID_SIDE:
        return 1.0
    return float(SMALL_DECAY + (1.0 - SMALL_DECAY) * np.log(side / SMALL_SIDE) / np.log(LUCID_SIDE / SMALL_SIDE))


def spectrum_scale(h: int, w: int, decay: float | None = None) -> np.ndarray:
    """lucid's `fft_image` scale: 1 / max(f, 1 / max(h, w))^decay, times sqrt(h w) (a unitary transform);
    `decay` None: decay_power(h, w)."""
    freqs = rfft2d_freqs(h, w)
    decay_power_ = decay_power(h, w) if decay is None else decay
    return (np.sqrt(w * h) / np.maximum(freqs, 1.0 / max(w, h)) ** decay_power_).astype(np.float32)


def to_image(spectrum, scale, h: int, w: int):
    """The image in [0, 1] (B, h, w, C) of a spectrum (2, B, C, h, wf) (real, imaginary): lucid's
    `fft_image` then `to_valid_rgb` (colours decorrelated where C = 3, sigmoid)."""
    import tensorflow as tf

    complex_ = tf.complex(spectrum[0] * scale, spectrum[1] * scale)
    image = tf.transpose(tf.signal.irfft2d(complex_), (0, 2, 3, 1))[:, :h, :w, :] / 4.0
    if image.shape[-1] == 3:
        matrix = COLOR_SVD_SQRT / np.max(np.linalg.norm(COLOR_SVD_SQRT, axis=0))
        image = tf.einsum("bhwc,dc->bhwd", image, tf.constant(matrix))
    return tf.sigmoid(image)


def random_warp(images, seed):
    """Each image through its own random shift, scale and rotation (bilinear, grey outside): lucid's
    pad / jitter / random_scale / random_rotate / jitter in one warp that keeps the input size.
    `seed`: a (2,) int32 tensor (a stateless draw: the same seed gives the same warps)."""
    import tensorflow as tf

    n = tf.shape(images)[0]
    h, w = int(images.shape[1]), int(images.shape[2])
    shift = max(1.0, JITTER * max(h, w))
    draws = tf.random.stateless_uniform((n, 4), seed, -1.0, 1.0)
    tx, ty = shift * draws[:, 0], shift * draws[:, 1]
    scale = SCALES[0] + (SCALES[1] - SCALES[0]) * (draws[:, 2] + 1) / 2
    angle = np.pi / 180 * (ANGLES[0] + (ANGLES[1] - ANGLES[0]) * (draws[:, 3] + 1) / 2)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # output pixel (x, y) reads input (a0 x + a1 y + a2, b0 x + b1 y + b2): rotated and scaled about the centre, shifted
    transforms = tf.stack([cos, -sin, cx - cos * cx + sin * cy + tx,
                           sin, cos, cy - sin * cx - cos * cy + ty,
                           tf.zeros_like(cos), tf.zeros_like(cos)], axis=1)
    # tf.raw_ops.ImageProjectiveTransformV3 is the op under keras' RandomRotation / RandomZoom, with a gradient
    return tf.raw_ops.ImageProjectiveTransformV3(images=images, transforms=transforms, output_shape=[h, w],
                                                 fill_value=0.5, interpolation="BILINEAR", fill_mode="CONSTANT")


def gram_similarity(maps, group: int):
    """(B,) lucid's diversity: for each image the mean over the other images of its group (`group`
    consecutive images) of the cosine similarity of their Gram matrices (channels x channels of the
    maps, summed over positions)."""
    import tensorflow as tf

    maps = tf.cast(maps, tf.float32)
    b, c = tf.shape(maps)[0], maps.shape[-1]
    flat = tf.reshape(maps, (b, -1, c))
    grams = tf.nn.l2_normalize(tf.reshape(tf.matmul(flat, flat, transpose_a=True), (b // group, group, c * c)),
                               axis=-1, epsilon=1e-10)
    cos = tf.matmul(grams, grams, transpose_b=True)                          # (G, group, group)
    return tf.reshape((tf.reduce_sum(cos, axis=-1) - tf.linalg.diag_part(cos)) / (group - 1), (-1,))


def lucid_step(extractor, objective, group: int, h: int, w: int):
    """One compiled step: (spectrum, Adam's m and v, t, chosen, seed, weight) -> (objective values on the
    warped images, new spectrum, m, v). `objective(extractor(x), chosen)` gives (values reported (B,),
    values ascended (B,), maps for the diversity term). Adam by hand with lucid's settings: its moments
    pass through the calls as plain tensors, so the units go through in batches with one traced function
    and no optimiser state to reset between them."""
    import tensorflow as tf

    scale = tf.constant(spectrum_scale(h, w))

    @tf.function(reduce_retracing=True)
    def step(spectrum, m, v, t, chosen, seed, weight):
        with tf.GradientTape() as tape:
            tape.watch(spectrum)
            image = random_warp(to_image(spectrum, scale, h, w), seed)
            value, total, maps = objective(extractor(image, training=False), chosen)
            if group > 1:   # relative to each image's own objective: the same weight fits logits and activations
                total = total - weight * tf.abs(tf.stop_gradient(total)) * gram_similarity(maps, group)
            total = tf.reduce_sum(total)
        grads = -tape.gradient(total, spectrum)     # Adam descends: ascend the objective
        m = 0.9 * m + 0.1 * grads
        v = 0.999 * v + 0.001 * tf.square(grads)
        m_hat, v_hat = m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)
        return value, spectrum - LR * m_hat / (tf.sqrt(v_hat) + 1e-8), m, v
    return step


def render(extractor, objective, chosen: np.ndarray, shape: tuple, *, steps: int, seed: int, group: int = 1,
           weight: float = DIVERSITY, batch: int = 64, progress=None):
    """(images (N, H, W, C) in [0, 1], objective values at the first step (N,), on the warped image) for
    the N rows of `chosen` (one-hot units; `group` consecutive rows per unit, pushed apart by the
    diversity term when group > 1). About `batch` images go through at once (whole groups)."""
    import tensorflow as tf

    h, w, channels = shape
    count = len(chosen)
    freqs = rfft2d_freqs(h, w)
    rng = np.random.default_rng(seed)
    spectrum = rng.normal(0, SD, (2, count, channels) + freqs.shape).astype(np.float32)
    step = lucid_step(extractor, objective, group, h, w)
    scale = tf.constant(spectrum_scale(h, w))
    per = max(1, batch // group) * group
    images, starts = [], []
    for i in range(0, count, per):
        part, picked = tf.constant(spectrum[:, i:i + per]), tf.constant(chosen[i:i + per], tf.float32)
        m, v, start = tf.zeros_like(part), tf.zeros_like(part), None
        for t in range(1, steps + 1):
            value, part, m, v = step(part, m, v, tf.constant(t, tf.float32), picked,
                                     tf.constant([seed, t * 7919 + i], tf.int32), tf.constant(weight, tf.float32))
            start = value.numpy() if start is None else start
            if progress is not None:
                progress(i * steps + t * int(picked.shape[0]))
        images.append(to_image(part, scale, h, w).numpy())
        starts.append(start)
    return np.concatenate(images), np.concatenate(starts)
