"""ImageNet-C's 15 common corruptions (Hendrycks & Dietterich 2019) for images of any size and channel
count, with CIFAR-10-C's severity tables (Hendrycks' make_cifar_c.py, made for 32-pixel images): every
length in pixels is scaled by the image's side / 32, so MNIST, CIFAR and larger images all get them.

The formulas are those of ImageNet-C as `imagecorruptions` (Michaelis et al. 2019) writes them for any
size, ported to NumPy and SciPy (see kerascnn.corrupt.helpers for why it is not imported); the
elastic transform is CIFAR-10-C's, with a table that rises. Frost is synthetic: ImageNet-C blends crops
of six frost photographs shipped with its code, which we neither ship nor download; a seeded texture
of fractal haze and ice streaks stands in for them, blended with CIFAR-10-C's weights. Where a
CIFAR-10-C table did not make the damage rise with the severity (mean absolute pixel change over
digit-like and coloured test images), it was reordered or stretched: the comments say where.
"""
from __future__ import annotations

import io

import numpy as np
from scipy import ndimage

from kerascnn.corrupt import helpers


def _scale(x) -> float:
    return min(x.shape[:2]) / 32


def gaussian_noise(x, severity, rng):
    c = [0.04, 0.06, .08, .09, .10][severity - 1]
    return np.clip(x + rng.normal(0, c, x.shape), 0, 1)


def shot_noise(x, severity, rng):
    c = [500, 250, 100, 75, 50][severity - 1]
    return np.clip(rng.poisson(x * c) / c, 0, 1)


def impulse_noise(x, severity, rng):
    from kerascnn.corrupt.mnist_c import salt_and_pepper

    c = [.01, .02, .03, .05, .07][severity - 1]
    return salt_and_pepper(x, c, rng)


def defocus_blur(x, severity, rng):
    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    s = _scale(x)
    return np.clip(helpers.convolve(x, helpers.disk(radius * s, alias * s), mode="reflect"), 0, 1)


def glass_blur(x, severity, rng):
    from kerascnn.corrupt.mnist_c import glass

    # CIFAR-10-C's table, (0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2), barely moves
    # the damage over its first three levels (the swaps dominate a small image, the sub-pixel blurs add
    # little: 0.034, 0.034, 0.036 mean change on digit-like images): more swap passes and, at 4 and 5,
    # swaps two pixels away make it rise.
    sigma, delta, iterations = [(0.05, 1, 1), (0.25, 1, 2), (0.4, 1, 3), (0.4, 2, 2), (0.5, 2, 3)][severity - 1]
    s = _scale(x)
    return glass(x, max(sigma * s, 1e-3), max(1, int(round(delta * s))), iterations, rng)


def motion_blur(x, severity, rng):
    radius, sigma = [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)][severity - 1]
    s = _scale(x)
    kernel = helpers.motion_kernel(radius * s, sigma * s, rng.uniform(-45, 45))
    return np.clip(helpers.convolve(x, kernel, mode="nearest"), 0, 1)


def zoom_blur(x, severity, rng):
    top = [1.06, 1.11, 1.16, 1.21, 1.26][severity - 1]
    out = x.copy()
    factors = np.arange(1, top, 0.01)
    for f in factors[1:]:
        out += helpers.clipped_zoom(x, f)
    return np.clip(out / len(factors), 0, 1)


def snow(x, severity, rng):
    loc, spread, zoom, threshold, radius, sigma, blend = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    s = _scale(x)
    layer = helpers.clipped_zoom(rng.normal(loc, spread, x.shape[:2]), zoom)
    layer[layer < threshold] = 0
    kernel = helpers.motion_kernel(radius * s, sigma * s, rng.uniform(-135, -45))
    layer = ndimage.correlate(np.clip(layer, 0, 1), kernel, mode="constant")[..., None]
    y = blend * x + (1 - blend) * np.maximum(x, helpers.luminance(x) * 1.5 + 0.5)
    return np.clip(y + layer + np.rot90(layer, k=2), 0, 1)


def frost_texture(shape, rng) -> np.ndarray:
    """(H, W) in [0, 1]: a synthetic frost pane (fractal haze plus short bright ice streaks), seeded."""
    h, w = shape
    side = max(h, w)
    haze = helpers.plasma_fractal(side, 1.6, rng)[:h, :w]
    streaks = np.zeros((h, w))
    for _ in range(max(6, side // 3)):
        start = rng.uniform(0, 1, 2) * (h, w)
        angle, length = rng.uniform(0, np.pi), rng.uniform(0.08, 0.3) * side
        end = start + length * np.array([np.sin(angle), np.cos(angle)])
        streaks = np.maximum(streaks, rng.uniform(0.5, 1) * helpers.segment((h, w), start, end, 0.35))
    texture = 0.6 * haze + 0.7 * streaks
    return (texture - texture.min()) / max(texture.max() - texture.min(), 1e-12)


def frost(x, severity, rng):
    """The frost texture laid over the image, covering a fraction of it that rises with the severity.
    CIFAR-10-C's (image, frost) weights, (1, 0.2) ... (0.75, 0.45), darken the image as they add frost,
    so that on mid-grey images severity 5 changed pixels less than 3: a convex blend with CIFAR-10-C's
    frost weights rises on any image."""
    cover = [0.2, 0.3, 0.4, 0.45, 0.55][severity - 1]
    texture = frost_texture(x.shape[:2], rng)[..., None]
    tint = np.array([0.85, 0.92, 1.0]) if x.shape[-1] == 3 else np.ones(x.shape[-1])
    return np.clip((1 - cover) * x + cover * texture * tint, 0, 1)


def fog(x, severity, rng):
    c, decay = [(.2, 3), (.5, 3), (.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    top = x.max()
    layer = helpers.plasma_fractal(max(x.shape[:2]), decay, rng)[:x.shape[0], :x.shape[1], None]
    return np.clip((x + c * layer) * top / (top + c), 0, 1)


def brightness(x, severity, rng):
    c = [.05, .1, .15, .2, .3][severity - 1]
    if x.shape[-1] != 3:
        return np.clip(x + c, 0, 1)
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    hsv = rgb_to_hsv(np.clip(x, 0, 1))
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1)


def contrast(x, severity, rng):
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    mean = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - mean) * c + mean, 0, 1)


def elastic_transform(x, severity, rng):
    """CIFAR-10-C's elastic transform, a random affine jitter of three points about the centre (black
    outside) then a smooth random displacement field, with our own table: CIFAR-10-C's shrinks the
    affine jitter as the severity rises (0.08 to 0.03 of the side) and its damage falls with the
    severity (mean change 0.062, 0.068, 0.054, 0.046, 0.043 on digit-like images); here jitter and
    displacement both grow, over a fixed smoothness of 6% of the side. (imagecorruptions'
    size-relative version smooths over 1% of the side, a third of a pixel on MNIST: it scrambles
    pixels like glass blur rather than bending strokes.)"""
    side = min(x.shape[:2])
    alpha, jitter = np.array([(0.02, 0.01), (0.04, 0.02), (0.06, 0.03), (0.08, 0.04), (0.1, 0.05)][severity - 1]) * side
    sigma = 0.06 * side
    h, w = x.shape[:2]
    centre, size = np.array([(h - 1) / 2, (w - 1) / 2]), side // 3
    before = np.array([centre + size, [centre[0] + size, centre[1] - size], centre - size])
    after = before + rng.uniform(-jitter, jitter, before.shape)
    # the affine map taking `after` back to `before` (output pixel -> input pixel), solved exactly
    solve = np.linalg.solve(np.c_[after, np.ones(3)], before)      # (3, 2): [A^T; b]
    matrix, offset = solve[:2].T, solve[2]
    moved = np.stack([ndimage.affine_transform(x[..., c], matrix, offset=offset, order=1, mode="constant")
                      for c in range(x.shape[-1])], -1)
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect", truncate=3) * alpha
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect", truncate=3) * alpha
    rows, cols = np.mgrid[0:h, 0:w]
    coords = [rows + dy, cols + dx]
    return np.clip(np.stack([ndimage.map_coordinates(moved[..., c], coords, order=1, mode="reflect")
                             for c in range(x.shape[-1])], -1), 0, 1)


def pixelate(x, severity, rng):
    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    from PIL import Image

    h, w = x.shape[:2]
    small = (max(1, int(w * c)), max(1, int(h * c)))
    out = []
    for k in range(x.shape[-1]):
        channel = Image.fromarray(x[..., k].astype(np.float32), mode="F")
        out.append(np.asarray(channel.resize(small, Image.BOX).resize((w, h), Image.BOX)))
    return np.clip(np.stack(out, -1), 0, 1)


def jpeg_compression(x, severity, rng):
    quality = [80, 65, 58, 50, 40][severity - 1]
    from PIL import Image

    pixels = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    planes = [pixels] if x.shape[-1] == 3 else [pixels[..., k] for k in range(x.shape[-1])]
    out = []
    for plane in planes:
        buffer = io.BytesIO()
        Image.fromarray(plane, mode="RGB" if plane.ndim == 3 else "L").save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer), np.float64) / 255
        out.append(decoded if decoded.ndim == 3 else decoded[..., None])
    return np.concatenate(out, -1)


#: ImageNet-C's order
CORRUPTIONS = {"gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
               "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur,
               "zoom_blur": zoom_blur, "snow": snow, "frost": frost, "fog": fog, "brightness": brightness,
               "contrast": contrast, "elastic_transform": elastic_transform, "pixelate": pixelate,
               "jpeg_compression": jpeg_compression}
