"""Picture files as pixels: `load_picture` gives a user's own picture in a task's shape, and
`read_pictures` the files of an image folder as one array (for kerascnn.data.sources); both decode through
`open_picture` and `to_pixels`.

Pixels are float32 in [0, 1]. Transparent pixels count as white paper. 16-bit greyscale pictures
(PIL modes I;16 and I) are scaled by their mode's range, 0-65535, so they are never read as blank
(PIL's own convert("L") clips them to 255). A picture over PIL's decompression-bomb warning limit
is read quietly; one over its error limit is refused with one line.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from kerascnn.errors import UserError, first_line

#: PIL modes read as one channel; everything else is read as RGB.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
#: MNIST frames each digit's ink box in 20 of its 28 pixels; other sizes keep that proportion.
DIGIT_BOX = 20 / 28


def open_picture(path: str | os.PathLike):
    """The picture at `path` as a loaded PIL image; a one-line UserError when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        # a big photo is no attack here: no two-line DecompressionBombWarning (the error still counts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:  # closes the file (a GIF's too) once the pixels are read
            img.load()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image {path}: {first_line(e, limit=None)}") from None
    return img


def is_greyscale(img) -> bool:
    """True for PIL's one-channel modes (L, LA, I;16, I, 1, F)."""
    return img.mode in GREY_MODES


def to_pixels(img, channels: int) -> np.ndarray:
    """A PIL image as (h, w, channels) float32 in [0, 1]: transparency on white, 16-bit scaled."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        grey = _wide_grey(np.asarray(img))
        return grey[:, :, None] if channels == 1 else np.repeat(grey[:, :, None], 3, axis=2)
    img = _on_white(img)
    pixels = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / np.float32(255)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels)


def _wide_grey(values: np.ndarray) -> np.ndarray:
    """16/32-bit integer or float greyscale -> (h, w) float32 in [0, 1], by the mode's range."""
    is_float = values.dtype.kind == "f"
    values = values.astype(np.float64)
    if is_float and np.isfinite(values).all() and 0 <= values.min() and values.max() <= 1:
        lo, hi = 0.0, 1.0  # float pictures already in [0, 1]
    elif 0 <= values.min() and values.max() <= 65535:
        lo, hi = 0.0, 65535.0  # 16-bit, whether PIL calls it I;16 or I
    else:
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))  # no range to trust: stretch
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return np.clip(np.nan_to_num(scaled), 0, 1).astype(np.float32)


def _on_white(img):
    """Composites a picture with transparency on white paper (others are returned as they are)."""
    from PIL import Image

    if img.mode in ("RGBA", "LA", "La", "PA", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        composed = Image.alpha_composite(paper, rgba)
        return composed.convert("L" if img.mode in ("LA", "La") else "RGB")
    return img


def resize_pixels(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, C) float32 -> (height, width, C), LANCZOS per channel, clipped to [0, 1]."""
    from PIL import Image

    if pixels.shape[:2] == (height, width):
        return pixels
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(pixels[:, :, c], np.float32), mode="F")
                         .resize((width, height), Image.LANCZOS), np.float32)
              for c in range(pixels.shape[2])]
    return np.clip(np.stack(planes, axis=2), 0, 1)


def read_pictures(paths: list) -> tuple[np.ndarray, list[str]]:
    """The pictures as uint8 (N, H, W, C) and the notices for the user: C is 1 when every picture is
    greyscale, else 3; pictures whose size differs from the first one's are resized to it (one notice)."""
    images, resized, size = [], 0, None
    for path in paths:
        img = open_picture(path)
        pixels = to_pixels(img, 1 if is_greyscale(img) else 3)
        size = size or pixels.shape[:2]
        if pixels.shape[:2] != size:
            pixels, resized = resize_pixels(pixels, *size), resized + 1
        images.append(np.rint(pixels * 255).astype(np.uint8))
    out = np.empty((len(images), *(size or (1, 1)), max((i.shape[2] for i in images), default=1)), np.uint8)
    for i, image in enumerate(images):
        out[i] = image  # a greyscale picture among RGB ones is broadcast to all three channels
    notices = [f"resized {resized} image{'s' * (resized != 1)} to {size[0]}x{size[1]} (height x width, "
               f"the first image's size)"] if resized else []
    return out, notices


def _shrink(img, target: int):
    """A huge picture reduced (by an integer factor) to about `target` pixels on its long side, so that
    a 10000x10000 photo is not turned into a 400 MB float array for a 28x28 input."""
    factor = max(img.size) // target
    if factor < 2:
        return img
    if img.mode == "1" or img.mode.startswith("I;16"):  # modes Image.reduce refuses; same values
        img = img.convert("L" if img.mode == "1" else "I")
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
    return img.reduce(factor)


def load_picture(path: str | os.PathLike, shape: tuple[int, int, int], digits: bool = False) -> np.ndarray:
    """A user's picture in a task's input shape: (H, W, C) float32 in [0, 1].

    Any size or mode PIL reads. `shape` is the task's (H, W, C), C 1 (greyscale) or 3 (RGB).
    digits=False: transparency on white, greyscale or RGB, resized to (H, W) with LANCZOS; nothing else.
    digits=True, for MNIST-like tasks (a light digit on dark): the picture is made greyscale and
    inverted when its background (the median of its border) is light; then framed the way MNIST's
    digits were: the ink's bounding box scaled to fit 20/28 of the height and width, its centre of mass
    at the centre. A picture with no ink is simply resized. C=3 gets the same grey in every channel.
    """
    height, width, channels = (int(d) for d in shape)
    if channels not in (1, 3) or height < 1 or width < 1:
        raise ValueError(f"shape must be (H, W, 1) or (H, W, 3), got {tuple(shape)}")
    img = _shrink(open_picture(path), max(1024, 8 * max(height, width)))
    if not digits:
        return resize_pixels(to_pixels(img, channels), height, width)
    grey = to_pixels(img, 1)[:, :, 0]
    if np.median(_border(grey)) > 0.5:
        grey = 1.0 - grey
    grey = np.clip(grey - np.median(_border(grey)), 0, 1)
    framed = _frame_like_mnist(grey, height, width)[:, :, None]
    return framed if channels == 1 else np.repeat(framed, 3, axis=2)


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def _frame_like_mnist(ink: np.ndarray, height: int, width: int) -> np.ndarray:
    """Light-on-dark (h, w) in [0, 1] -> (height, width): ink box fitted to 20/28 of each side, centre
    of mass centred."""
    peak = float(ink.max())
    if peak <= 0:
        return resize_pixels(ink[:, :, None], height, width)[:, :, 0]
    ink = ink / peak
    rows = np.flatnonzero(ink.max(axis=1) > 0.2)
    cols = np.flatnonzero(ink.max(axis=0) > 0.2)
    box = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = box.shape
    scale = min(DIGIT_BOX * height / h, DIGIT_BOX * width / w)
    new_h, new_w = min(height, max(1, round(h * scale))), min(width, max(1, round(w * scale)))
    digit = resize_pixels(box[:, :, None], new_h, new_w)[:, :, 0]
    canvas = np.zeros((height, width), np.float32)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = digit
    mass = canvas.sum()
    if mass <= 0:
        return canvas
    yy, xx = np.mgrid[0:height, 0:width]
    shift_y = int(round((height - 1) / 2 - (yy * canvas).sum() / mass))
    shift_x = int(round((width - 1) / 2 - (xx * canvas).sum() / mass))
    # shift the centre of mass to the middle, as far as the digit's box stays inside the image
    shift_y = int(np.clip(shift_y, -top, height - top - new_h))
    shift_x = int(np.clip(shift_x, -left, width - left - new_w))
    return np.roll(canvas, (shift_y, shift_x), axis=(0, 1))
