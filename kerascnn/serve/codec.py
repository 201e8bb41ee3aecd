"""The page's wire format: a request's JSON fields checked (every bad one a RequestError that
becomes a 400 naming it), base64 pictures in, base64 PNGs out.

Pixels are float32 (H, W, C) in [0, 1]; a map (h, w) of any sign is drawn with a colour map.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import warnings

import numpy as np

#: The largest picture a request may carry, decoded (width x height), and its base64 text.
MAX_PIXELS = 2048 * 2048
MAX_IMAGE_CHARS = 4 * 1024 * 1024


class RequestError(Exception):
    """A request the server refuses: `status` (400, 404, 413, 429) and a one-line message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


# ---------------------------------------------------------------------------- fields
def number(body: dict, key: str, default=None, low=None, high=None, whole: bool = False):
    """body[key] as a finite number in [low, high] (an int where `whole`), or `default` when absent."""
    value = body.get(key, default)
    if value is None:
        return None
    try:  # math.isfinite of an int too large for a float raises OverflowError
        fine = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) \
            and not (whole and value != int(value))
    except OverflowError:
        fine = False
    if not fine:
        raise RequestError(f"{key}: must be a {'whole ' if whole else ''}number, got {str(value)[:60]}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise RequestError(f"{key}: must be between {low} and {high}, got {value}")
    return int(value) if whole else float(value)


def choice(body: dict, key: str, options, default=None) -> str:
    value = body.get(key, default)
    if value not in options:
        raise RequestError(f"{key}: must be one of {', '.join(map(str, options))}, got {str(value)[:60]!r}")
    return value


def class_number(body: dict, key: str, classes) -> int | None:
    """A class given by number or by name (None: absent)."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value in classes:
        return list(classes).index(value)
    return number(body, key, low=0, high=len(classes) - 1, whole=True)


# ---------------------------------------------------------------------------- pictures in
def decode_picture(text, shape: tuple[int, int, int], digits: bool) -> np.ndarray:
    """A base64 picture (PNG, JPEG, ...; a data: URL too) -> (H, W, C) float32 in [0, 1] in the task's
    shape, made so by kerascnn's own picture loader (digits: framed like MNIST's)."""
    from PIL import Image, UnidentifiedImageError

    from kerascnn.data.pictures import load_picture
    from kerascnn.errors import UserError

    if not isinstance(text, str) or not text:
        raise RequestError("image: must be a base64 PNG or JPEG (a data: URL or the bare base64 text)")
    if len(text) > MAX_IMAGE_CHARS:
        raise RequestError(f"image: {len(text):,} characters is over the limit of {MAX_IMAGE_CHARS:,}", 413)
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("image: is not valid base64") from None
    with warnings.catch_warnings():  # a broken file's complaints (truncated, bad EXIF): the answer says it
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise RequestError("image: is not a picture PIL can read (send a PNG or JPEG)") from None
        if width * height > MAX_PIXELS:
            raise RequestError(f"image: {width}x{height} is larger than {MAX_PIXELS:,} pixels", 413)
        try:
            return load_picture(io.BytesIO(data), shape, digits=digits)
        except (UserError, ValueError, OSError) as e:
            raise RequestError(f"image: {str(e)[:200]}") from None


# ---------------------------------------------------------------------------- pictures out
def png(pixels: np.ndarray, max_side: int | None = None) -> str:
    """(h, w), (h, w, 1) or (h, w, 3) in [0, 1] (or uint8) -> base64 PNG text; `max_side`: shrunk to
    fit that many pixels (thumbnails)."""
    from PIL import Image

    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        array = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    picture = Image.fromarray(array)
    if max_side is not None and max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def colour(values: np.ndarray, signed: bool, scale: float | None = None, see_through: bool = False) -> np.ndarray:
    """A map (h, w) -> (h, w, 4) uint8 RGBA: signed maps red (+) / blue (-), others in 'inferno';
    `scale` the value drawn at full strength (None: the map's largest magnitude); `see_through`: the
    opacity follows the magnitude (for an overlay on the image)."""
    from matplotlib import colormaps

    v = np.asarray(values, np.float64)
    top = float(scale if scale else np.max(np.abs(v))) or 1.0
    if signed:
        rgba = colormaps["RdBu_r"](np.clip(0.5 + 0.5 * v / top, 0, 1))
    else:
        rgba = colormaps["inferno"](np.clip(v / top, 0, 1))
    if see_through:
        rgba[..., 3] = np.clip(np.abs(v) / top, 0, 1) ** 0.5
    return (rgba * 255).astype(np.uint8)


def map_png(values: np.ndarray, signed: bool, scale: float | None = None, see_through: bool = False) -> str:
    return png(colour(values, signed, scale, see_through))
