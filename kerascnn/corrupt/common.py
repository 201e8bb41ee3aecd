"""ImageNet-C's 15 common corruptions (Hendrycks & Dietterich, ICLR 2019) for one image of any size and
channel count, with CIFAR-10-C's severity tables (Hendrycks' make_cifar_c.py, made for 32-pixel images)
in which every length in pixels is scaled by the image's side / 32 (side = min(H, W)), so that MNIST,
CIFAR and larger images all get them. The formulas are ported to NumPy and SciPy (Pillow for pixelate
and JPEG) from `imagecorruptions` 1.1.2 (Michaelis et al. 2019, ImageNet-C's code for any image size;
kerascnn.corrupt.helpers says why it is not imported): the noises, blurs, snow, fog, brightness,
contrast, pixelate and JPEG as it writes them, the elastic transform (a random affine on three points,
then a smooth displacement field) and every severity table as make_cifar_c.py writes them. Where a table
did not make the mean absolute pixel change rise with the severity on digit-like and coloured images
(glass blur, snow, frost, elastic transform, pixelate) it was changed as little as we found would do,
and the comments say how; zoom blur zooms exactly (and defocus blur's disk, helpers.disk, has a soft
edge) for the same reason. Frost is synthetic: ImageNet-C blends in crops of six frost photographs
shipped with its code, which we can neither ship nor download, so a seeded texture of fractal haze and
short ice streaks stands in for them. Every function maps (x, severity, rng) to a float32 image of x's
shape in [0, 1], drawing all its randomness from `rng`.
"""
from __future__ import annotations

import io

import numpy as np
from scipy import ndimage

from kerascnn.corrupt import helpers


def _scale(x: np.ndarray) -> float:
    """How much longer a pixel length of CIFAR-10-C's tables (32-pixel images) is on `x`."""
    return min(x.shape[:2]) / 32


def _out(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 1).astype(np.float32)


# ----------------------------------------------------------------------------------------- noise


def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    c = [0.04, 0.06, .08, .09, .10][severity - 1]
    return _out(x + rng.normal(0, c, x.shape))


def shot_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    c = [500, 250, 100, 75, 50][severity - 1]
    return _out(rng.poisson(np.clip(x, 0, 1) * c) / c)


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper as scikit-image's random_noise(mode='s&p', amount=c): each entry (pixel and
    channel) is hit with probability c, and a hit entry becomes 0 or 1, half each."""
    c = [.01, .02, .03, .05, .07][severity - 1]
    hit = rng.random(x.shape) < c
    salt = rng.random(x.shape) < 0.5
    return _out(np.where(hit, salt, x))


# ------------------------------------------------------------------------------------------ blur


def defocus_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    radius, alias_blur = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    s = _scale(x)
    # helpers.disk has a soft edge: CIFAR-10-C's radii are below a pixel at severities 1-3 and, scaled to
    # 28 pixels, at 4 too (0.875), where a hard disk is the centre pixel alone and 4 blurred less than 3.
    # "mirror" is OpenCV's filter2D border (BORDER_REFLECT_101).
    return _out(helpers.convolve(x, helpers.disk(radius * s, alias_blur * s), mode="mirror"))


def glass_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blur, then locally shuffle: visiting the pixels from bottom right to top left, swap each with
    the one (dy, dx) away, dy and dx drawn from [-delta, delta) (NumPy's randint excludes the high end,
    so the swaps only reach up and left as in ImageNet-C), `iterations` times; then blur again. The
    swaps run on an index list in the reference's order (a swap moves what earlier ones moved) and
    the pixels are gathered once."""
    # CIFAR-10-C: (0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2). Its damage did not
    # rise: blurs of sigma <= 0.25 do nothing at 32 pixels (severities 1 and 2 were the same), and the
    # second blur smooths the shuffled pixels back towards the original, so that the sigma-0.4 severities
    # 3 and 5 changed noise-like images less than 2 and 4. Here the passes rise, 1, 2, 3, 5, 8, and sigma
    # rises gently to 0.25 (a no-op at 32 pixels, a blur on larger images).
    sigma, delta, iterations = [(0.05, 1, 1), (0.1, 1, 2), (0.15, 1, 3), (0.2, 1, 5), (0.25, 1, 8)][severity - 1]
    s = _scale(x)
    sigma, delta = sigma * s, max(1, round(delta * s))
    h, w = x.shape[:2]
    y = helpers.blur(x, sigma)
    rows = np.arange(h - delta, delta, -1)
    cols = np.arange(w - delta, delta, -1)
    here = (rows[:, None] * w + cols[None, :]).ravel()
    order = list(range(h * w))
    for _ in range(iterations):
        moves = rng.integers(-delta, delta, size=(len(rows), len(cols), 2)).reshape(-1, 2)  # (dx, dy)
        there = here + moves[:, 1] * w + moves[:, 0]
        for a, b in zip(here.tolist(), there.tolist()):
            order[a], order[b] = order[b], order[a]
    y = y.reshape(h * w, -1)[order].reshape(x.shape)
    return _out(helpers.blur(y, sigma))


def motion_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """ImageMagick's -motion-blur (radius: the reach, sigma: the fall-off) at an angle in [-45, 45]
    degrees; the edge pixels repeat beyond the border, as imagecorruptions' shifts do."""
    radius, sigma = [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)][severity - 1]
    s = _scale(x)
    kernel = helpers.motion_kernel(radius * s, sigma * s, rng.uniform(-45, 45))
    return _out(helpers.convolve(x, kernel, mode="nearest"))


def _zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """`x` (H, W, C) magnified by `factor` >= 1 about its centre, keeping its size (bilinear). Unlike
    helpers.clipped_zoom, which crops a whole number of pixels and stretches the crop back, the zoom is
    exact, so that zoom_blur's small factors (1.01, 1.02, ...) each zoom a little more than the last:
    at 28 pixels the cropped zoom moves in uneven steps and zoom blur's damage did not always rise."""
    h, w = x.shape[:2]
    centre = np.array([(h - 1) / 2, (w - 1) / 2, 0])
    matrix = np.array([1 / factor, 1 / factor, 1.0])
    return ndimage.affine_transform(x, matrix, offset=centre - matrix * centre, order=1, mode="nearest")


def zoom_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The mean of the image and its zooms about the centre by each factor (the first is 1: the image)."""
    top = [1.06, 1.11, 1.16, 1.21, 1.26][severity - 1]
    factors = np.arange(1, top, 0.01)
    out = x.copy()
    for f in factors:
        out += x if f == 1 else _zoom(x, f)
    return _out(out / (len(factors) + 1))


# --------------------------------------------------------------------------------------- weather


def snow(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A layer of thresholded, zoomed normal noise, motion-blurred downwards at an angle in [-135, -45]
    degrees, added twice (as drawn and turned half a turn) over the image whitened towards its luminance."""
    # CIFAR-10-C's table, but for severity 3's blend, 0.9 -> 0.875: with 2's blend, and its zoomed
    # noise (bilinear, so smoother) crossing the threshold little more often than 2's, severity 3 barely
    # changed coloured images more than 2 (and sometimes less); a little more whitening makes it rise.
    loc, scale, zoom, threshold, mb_radius, mb_sigma, blend = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.875),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    s = _scale(x)
    layer = helpers.clipped_zoom(rng.normal(loc, scale, x.shape[:2] + (1,)), zoom)[..., 0]
    layer[layer < threshold] = 0
    kernel = helpers.motion_kernel(mb_radius * s, mb_sigma * s, rng.uniform(-135, -45))
    layer = helpers.correlate_sparse(np.clip(layer, 0, 1), kernel, mode="nearest")[..., None]
    y = blend * x + (1 - blend) * np.maximum(x, helpers.luminance(x) * 1.5 + 0.5)
    return _out(y + layer + np.rot90(layer, k=2))


def frost_texture(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """(H, W) in [0, 1]: a synthetic frost pane, seeded by `rng`. A synthetic stand-in for ImageNet-C's
    six frost photographs (bundled with its code, which we neither ship nor download): a fine-grained
    plasma fractal (the haze of rime) plus many short, thin, bright streaks in random directions (ice
    crystals), each a lightly blurred line of splatted points, all at a scale proportional to the side."""
    h, w = shape
    side = min(h, w)
    s = side / 32
    haze = helpers.plasma_fractal(max(h, w), 1.5, rng)[:h, :w]   # a slow decay keeps the fine detail
    n = max(8, round(60 * h * w / side ** 2))                # the same cover at any size
    length = np.maximum(rng.uniform(0.04, 0.14, n) * side, 1.5)
    angle = rng.uniform(0, np.pi, n)
    start = rng.uniform(0, 1, (n, 2)) * (h, w)
    bright = rng.uniform(0.3, 1, n)
    t = np.linspace(0, 1, max(4, int(np.ceil(2 * length.max()))))
    direction = np.stack([np.sin(angle), np.cos(angle)], -1) * length[:, None]
    points = np.rint(start[:, None, :] + t[None, :, None] * direction[:, None, :]).astype(int)
    inside = (points[..., 0] >= 0) & (points[..., 0] < h) & (points[..., 1] >= 0) & (points[..., 1] < w)
    weights = np.broadcast_to(bright[:, None], inside.shape)[inside]
    streaks = np.bincount(points[inside][:, 0] * w + points[inside][:, 1], weights, h * w).reshape(h, w)
    streaks = ndimage.gaussian_filter(np.minimum(streaks, 1.0), 0.5 * max(s, 1.0), mode="wrap")
    streaks /= max(streaks.max(), 1e-12)
    texture = 0.6 * haze + streaks
    texture -= texture.min()
    return (texture / max(texture.max(), 1e-12)) ** 0.7   # lifted towards the brightness of frost photographs


def frost(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """c0 * image + c1 * frost (CIFAR-10-C's weights) with the synthetic frost_texture in place of
    ImageNet-C's photographs: bluish white on RGB images, grey on others."""
    # CIFAR-10-C's weights are (1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45): from severity 3
    # the image darkens as fast as frost is added, and 4 adds no more frost than 3, so on mid-grey and
    # coloured images severities 3 and 4 changed pixels less than 2. The image weights are kept and the
    # frost weights of 3-5 raised (0.4, 0.4, 0.45 -> 0.45, 0.55, 0.7) so that the change rises.
    c0, c1 = [(1, 0.2), (1, 0.3), (0.9, 0.45), (0.85, 0.55), (0.75, 0.7)][severity - 1]
    texture = frost_texture(x.shape[:2], rng)[..., None]
    tint = np.array([0.85, 0.9, 1.0]) if x.shape[-1] == 3 else np.ones(x.shape[-1])
    return _out(c0 * x + c1 * texture * tint)


def fog(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    c, decay = [(.2, 3), (.5, 3), (.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    h, w = x.shape[:2]
    top = x.max()
    y = x + c * helpers.plasma_fractal(max(h, w), decay, rng)[:h, :w, None]
    return _out(y * top / (top + c))


# ------------------------------------------------------------------------------------- digital


def brightness(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Add c to the HSV value. With hue and saturation held, RGB is proportional to the value (the
    channels' maximum), so the HSV round trip is a rescaling; a black pixel becomes grey. On other
    channel counts c is added to every channel (a grey image's value is the image)."""
    c = [.05, .1, .15, .2, .3][severity - 1]
    x = np.clip(x, 0, 1)
    if x.shape[-1] != 3:
        return _out(x + c)
    value = x.max(axis=-1, keepdims=True)
    lifted = np.minimum(value + c, 1)
    return _out(np.where(value > 0, x * lifted / np.maximum(value, 1e-12), lifted))


def contrast(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    c = [.75, .5, .4, .3, 0.15][severity - 1]
    mean = x.mean(axis=(0, 1), keepdims=True)
    return _out((x - mean) * c + mean)


def elastic_transform(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """CIFAR-10-C's: three points about the centre moved at random by up to `jitter` pixels define an
    affine map (mirrored at the border, as CIFAR-10-C's BORDER_REFLECT_101), then a displacement field of uniform noise smoothed by `sigma` and
    scaled by `alpha` (bilinear, reflected at the border)."""
    side = min(x.shape[:2])
    # CIFAR-10-C's (alpha, sigma, affine) are (0, 0, .08), (.05, .2, .07), (.08, .06, .06), (.1, .04, .05),
    # (.1, .03, .03) times the side: its affine jitter shrinks as the displacement grows, and on small
    # images the jitter dominates, so its damage fell with the severity. The affine column is reversed
    # and spaced evenly over the same range, .03, .0425, .055, .0675, .08, so that both grow; alpha and
    # sigma are CIFAR-10-C's.
    alpha, sigma, jitter = np.array([(0, 0, 0.03), (0.05, 0.2, 0.0425), (0.08, 0.06, 0.055), (0.1, 0.04, 0.0675),
                                     (0.1, 0.03, 0.08)][severity - 1]) * side
    h, w = x.shape[:2]
    centre, size = np.array([h // 2, w // 2], float), side // 3
    before = np.array([centre + size, [centre[0] + size, centre[1] - size], centre - size])
    after = before + rng.uniform(-jitter, jitter, before.shape)
    # the affine map taking `after` to `before`: output pixel -> the input pixel it reads
    solved = np.linalg.solve(np.c_[after, np.ones(3)], before)      # (3, 2): [A^T; b]
    matrix, offset = solved[:2].T, solved[2]
    moved = np.stack([ndimage.affine_transform(x[..., k], matrix, offset=offset, order=1, mode="mirror")
                      for k in range(x.shape[-1])], -1)
    noise = rng.uniform(-1, 1, (2, h, w))
    if alpha == 0:
        return _out(moved)
    dx = ndimage.gaussian_filter(noise[0], sigma, mode="reflect", truncate=3) * alpha
    dy = ndimage.gaussian_filter(noise[1], sigma, mode="reflect", truncate=3) * alpha
    rows, cols = np.mgrid[0:h, 0:w]
    coords = np.stack([rows + dy, cols + dx])
    return _out(np.stack([ndimage.map_coordinates(moved[..., k], coords, order=1, mode="reflect")
                          for k in range(x.shape[-1])], -1))


def pixelate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Box-downsample each channel to c of its size and box-upsample it back (Pillow, float images)."""
    from PIL import Image

    # CIFAR-10-C's c is 0.95, 0.9, 0.85, 0.75, 0.65. At 28 pixels 0.85 gives 24 = 28 * 6/7, a ratio whose
    # block grid blurs edges more than 23 or 22 pixels do, so that severity 3 often changed digit-like
    # images more than 4 (21 pixels); 0.8, 0.7, 0.6 (22, 20, 17 pixels at 28; 26, 22, 19 at 32) rise.
    c = [0.95, 0.9, 0.8, 0.7, 0.6][severity - 1]
    h, w = x.shape[:2]
    small = (max(1, round(w * c)), max(1, round(h * c)))
    out = []
    for k in range(x.shape[-1]):
        channel = Image.fromarray(np.ascontiguousarray(x[..., k], np.float32), mode="F")
        out.append(np.asarray(channel.resize(small, Image.BOX).resize((w, h), Image.BOX)))
    return _out(np.stack(out, -1))


def jpeg_compression(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A JPEG round trip through Pillow at the table's quality: RGB images as RGB, every other
    channel count one greyscale image per channel."""
    from PIL import Image

    quality = [80, 65, 58, 50, 40][severity - 1]
    pixels = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    planes = [pixels] if x.shape[-1] == 3 else [pixels[..., k] for k in range(x.shape[-1])]
    out = []
    for plane in planes:
        buffer = io.BytesIO()
        Image.fromarray(plane, mode="RGB" if plane.ndim == 3 else "L").save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(buffer), np.float32) / 255
        out.append(decoded if decoded.ndim == 3 else decoded[..., None])
    return _out(np.concatenate(out, -1))


#: ImageNet-C's order
CORRUPTIONS = {"gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
               "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur,
               "zoom_blur": zoom_blur, "snow": snow, "frost": frost, "fog": fog, "brightness": brightness,
               "contrast": contrast, "elastic_transform": elastic_transform, "pixelate": pixelate,
               "jpeg_compression": jpeg_compression}
