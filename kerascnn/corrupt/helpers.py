"""What the corruptions share: a seeded plasma fractal (fog), a zoom that keeps the size, a disk and a
motion-blur kernel, a centred affine warp and anti-aliased line segments.

Written here rather than taken from `imagecorruptions` (Michaelis et al., the ImageNet-C code for any
image size) or from MNIST-C's own script: imagecorruptions 1.1.2 does not import on a current stack
(`pkg_resources` is gone from setuptools, `np.float_` from NumPy 2, `multichannel=` from
scikit-image 0.19), it refuses images under 32 pixels, and it pulls OpenCV in for three filters;
MNIST-C's script needs ImageMagick (Wand) for its motion blur. The formulas follow theirs; the
filters are SciPy's and scikit-image's. Every random draw comes from the `rng` passed in, so that a
corruption is a pure function of (image, severity, seed).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def plasma_fractal(size: int, decay: float, rng: np.random.Generator, mapsize: int | None = None) -> np.ndarray:
    """A (size, size) height map in [0, 1] by the diamond-square algorithm (ImageNet-C's fog), drawn
    on `mapsize` (a power of two; None: the next one at or above `size`) and cropped: a larger map
    gives smoother fog (MNIST-C crops 28 pixels of a 256 map)."""
    n = mapsize or 1 << max(1, int(np.ceil(np.log2(max(size, 2)))))
    grid = np.zeros((n, n), np.float64)
    step, wibble = n, 100.0

    def wibbled(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while step >= 2:
        corners = grid[0:n:step, 0:n:step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        grid[step // 2:n:step, step // 2:n:step] = wibbled(square)
        centres = grid[step // 2:n:step, step // 2:n:step]
        corners = grid[0:n:step, 0:n:step]
        grid[0:n:step, step // 2:n:step] = wibbled(centres + np.roll(centres, 1, axis=0)
                                                   + corners + np.roll(corners, -1, axis=1))
        grid[step // 2:n:step, 0:n:step] = wibbled(centres + np.roll(centres, 1, axis=1)
                                                   + corners + np.roll(corners, -1, axis=0))
        step //= 2
        wibble /= decay
    grid -= grid.min()
    grid /= max(grid.max(), 1e-12)
    return grid[:size, :size]


def clipped_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """`image` (H, W, ...) magnified by `factor` >= 1 about its centre, cropped back to (H, W)."""
    h, w = image.shape[:2]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = image[top:top + ch, left:left + cw]
    zoomed = ndimage.zoom(crop, (factor, factor) + (1,) * (image.ndim - 2), order=1)
    th, tw = (zoomed.shape[0] - h) // 2, (zoomed.shape[1] - w) // 2
    out = zoomed[th:th + h, tw:tw + w]
    if out.shape[:2] != (h, w):  # rounding left it a pixel short: pad at the edge
        out = np.pad(out, [(0, h - out.shape[0]), (0, w - out.shape[1])] + [(0, 0)] * (image.ndim - 2), mode="edge")
    return out


def disk(radius: float, alias_blur: float) -> np.ndarray:
    """A normalised disk kernel of `radius` pixels, lightly blurred against aliasing (ImageNet-C's defocus)."""
    r = max(1, int(np.ceil(radius + 0.5)))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    # a pixel's weight is how far the disk covers it (a soft edge one pixel wide), so that a radius
    # below a pixel, as CIFAR-10-C's tables give a small image, still blurs in proportion
    kernel = np.clip(radius + 0.5 - np.hypot(x, y), 0, 1)
    kernel[r, r] = max(kernel[r, r], 1.0)
    kernel = ndimage.gaussian_filter(kernel, alias_blur)
    return kernel / kernel.sum()


def motion_kernel(length: float, sigma: float, angle: float) -> np.ndarray:
    """A one-sided motion-blur kernel: Gaussian weights (deviation `sigma` pixels) along a ray of
    `length` pixels at `angle` degrees, as ImageMagick's -motion-blur draws it."""
    r = max(1, int(np.ceil(length)))
    kernel = np.zeros((2 * r + 1, 2 * r + 1))
    t = np.linspace(0, length, 4 * r + 1)
    weights = np.exp(-t ** 2 / (2 * sigma ** 2))
    rad = np.deg2rad(angle)
    xs, ys = r + t * np.cos(rad), r - t * np.sin(rad)
    for x, y, wgt in zip(xs, ys, weights):  # bilinear splat of each point of the ray
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, part in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + dx <= 2 * r and 0 <= y0 + dy <= 2 * r:
                kernel[y0 + dy, x0 + dx] += wgt * part
    return kernel / kernel.sum()


def convolve(image: np.ndarray, kernel: np.ndarray, mode: str = "constant") -> np.ndarray:
    """Each channel of `image` (H, W, C) correlated with a 2-D kernel."""
    if mode in _PAD and kernel.shape[0] % 2 and kernel.shape[1] % 2:
        return correlate_sparse(image, kernel, mode)
    return np.stack([ndimage.correlate(image[..., c], kernel, mode=mode) for c in range(image.shape[-1])], axis=-1)


_PAD = {"nearest": "edge", "constant": "constant"}  # ndimage's boundary modes as np.pad's, where they agree


def correlate_sparse(image: np.ndarray, kernel: np.ndarray, mode: str = "constant") -> np.ndarray:
    """`image` (H, W) or (H, W, C), every channel correlated with the odd-sized 2-D `kernel`: the same
    float64s as ndimage.correlate (mode "nearest" or "constant" with cval 0), bit for bit.

    ndimage.correlate leaves out the weights within DBL_EPSILON of 0 and adds the rest, input times
    weight, in the kernel's row-major order; so does this, one shifted slice of the padded image per
    weight. A motion-blur kernel is a ray: 140 of 141 x 141 weights at 224 px, where ndimage took 2.4 s
    an image and this takes 0.02 s (2026-12-06, AMD EPYC; tests/test_corrupt.py checks the bits).
    """
    r0, r1 = kernel.shape[0] // 2, kernel.shape[1] // 2
    h, w = image.shape[:2]
    padded = np.pad(np.asarray(image, np.float64), [(r0, r0), (r1, r1)] + [(0, 0)] * (image.ndim - 2),
                    mode=_PAD[mode])
    out = np.zeros(image.shape, np.float64)
    for a, b in zip(*np.nonzero(np.abs(kernel) > np.finfo(np.float64).eps)):
        out += padded[a:a + h, b:b + w] * kernel[a, b]
    return out


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur over the two spatial axes only."""
    return ndimage.gaussian_filter(image, (sigma, sigma) + (0,) * (image.ndim - 2), mode="nearest")


def warp(image: np.ndarray, matrix: np.ndarray, order: int = 1) -> np.ndarray:
    """`image` (H, W, C) under the 2x2 linear map `matrix` about its centre (output pixel p reads input
    pixel centre + matrix^-1 (p - centre)), black outside."""
    h, w = image.shape[:2]
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    inverse = np.linalg.inv(matrix)
    offset = centre - inverse @ centre
    return np.stack([ndimage.affine_transform(image[..., c], inverse, offset=offset, order=order, mode="constant")
                     for c in range(image.shape[-1])], axis=-1)


def segment(shape: tuple, start, end, width: float = 1.0) -> np.ndarray:
    """(H, W) intensity in [0, 1] of an anti-aliased segment from `start` to `end` ((row, col) points):
    1 on the line, falling off over `width` pixels (MNIST-C's lines fall off as log(1 - d/2.3) + 1)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    p0, p1 = np.asarray(start, float), np.asarray(end, float)
    d = p1 - p0
    length2 = max(float(d @ d), 1e-12)
    t = np.clip(((rows - p0[0]) * d[0] + (cols - p0[1]) * d[1]) / length2, 0, 1)
    dist = np.hypot(rows - (p0[0] + t * d[0]), cols - (p0[1] + t * d[1]))
    reach = 2.3 * width
    return np.clip(np.log(1 - np.clip(dist, 0, reach - 1e-9) / reach) + 1, 0, 1)


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W, 1) brightness of an (H, W, C) image (Rec. 601 weights for RGB, the mean otherwise)."""
    if image.shape[-1] == 3:
        return (image @ np.array([0.299, 0.587, 0.114]))[..., None]
    return image.mean(axis=-1, keepdims=True)
