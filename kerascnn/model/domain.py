"""The input domain: what a model takes, as a map from the library's pixels (float32 in [0, 1]).

Every experiment works on pixels in [0, 1], so that an eps, a grey fill, a clip and a baseline mean
the same fraction of the full pixel range for every model (the field's "eps = 8/255"). A model may
take something else: [0, 255] (Keras' tutorial, with `Rescaling(1./255)` inside), [-1, 1], or the
ImageNet preprocessing of a `keras.applications` family done outside the model. An `InputDomain`
says which, and the Subject folds its map into the model that experiments call.

- `InputDomain(low, high)`: x -> low + (high - low) * x, the same for every channel.
- `InputDomain(preprocess=NAME)`: x -> keras.applications.NAME.preprocess_input(255 * x) (a family:
  mobilenet_v2, resnet50, ...), or imagenet_utils.preprocess_input(255 * x, mode=NAME) for a mode
  (tf, torch, caffe). Keras' own functions, so that their constants live in one place.

This module imports no TensorFlow: the CLI checks option values with it at parse time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kerascnn.errors import BadValue

#: `keras.applications.imagenet_utils.preprocess_input` modes: what each maps 0-255 pixels to.
MODES = {"tf": "[-1, 1]", "torch": "ImageNet mean/std", "caffe": "BGR minus the ImageNet mean"}
#: `keras.applications` modules with their own `preprocess_input` (some are the identity on
#: 0-255 pixels: those models preprocess inside, and take [0, 255]).
FAMILIES = ("convnext", "densenet", "efficientnet", "efficientnet_v2", "inception_resnet_v2", "inception_v3",
            "mobilenet", "mobilenet_v2", "mobilenet_v3", "nasnet", "resnet", "resnet50", "resnet_v2", "vgg16",
            "vgg19", "xception")
PREPROCESS_NAMES = tuple(MODES) + FAMILIES
DEFAULT_SOURCE = "default"


def parse_range(text: str) -> tuple[float, float]:
    """'LO,HI' -> (lo, hi), both finite and lo < hi; BadValue("input_range") otherwise."""
    from kerascnn.lists import split_list

    try:
        parts = split_list(str(text), "input_range")  # an empty item ('0,', ',255', '0,,255') is refused there
    except BadValue as e:
        raise BadValue("input_range", f"{e.message}; expected LO,HI such as 0,255 or -1,1") from None
    if len(parts) != 2:
        raise BadValue("input_range", f"expected LO,HI such as 0,255 or -1,1, got {text!r}")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise BadValue("input_range", f"expected two numbers LO,HI such as 0,255 or -1,1, got {text!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise BadValue("input_range", f"both ends must be finite, got {text!r}")
    if low >= high:
        raise BadValue("input_range", f"LO must be below HI, got {text!r}")
    return low, high


def check_preprocess(name: str) -> str:
    """A valid --preprocess name (lower-cased); BadValue("preprocess") listing the valid ones otherwise."""
    key = str(name).strip().lower()
    if key not in PREPROCESS_NAMES:
        raise BadValue("preprocess", f"unknown {name!r}: choose a mode ({', '.join(MODES)}) or a keras.applications "
                                     f"family ({', '.join(FAMILIES)})")
    return key


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class InputDomain:
    """What the model takes, from pixels x in [0, 1]: low + (high - low) * x, or a preprocessing."""
    low: float = 0.0
    high: float = 1.0
    preprocess: str | None = None     # a name of PREPROCESS_NAMES, applied to 255 * x
    source: str = DEFAULT_SOURCE      # how it was known: "default", "inferred: ...", "--input-range", "--preprocess"

    @classmethod
    def given(cls, input_range: str | tuple | None = None, preprocess: str | None = None) -> "InputDomain | None":
        """The domain the user gave (None: nothing given, so it is inferred from the model)."""
        if input_range is not None and preprocess is not None:
            raise BadValue("preprocess", "give --input-range or --preprocess, not both")
        if preprocess is not None:
            return cls(preprocess=check_preprocess(preprocess), source="--preprocess")
        if input_range is not None:
            low, high = parse_range(input_range) if isinstance(input_range, str) else map(float, input_range)
            return cls(float(low), float(high), source="--input-range")
        return None

    @property
    def identity(self) -> bool:
        """True when the model takes the library's own pixels, [0, 1]."""
        return self.preprocess is None and (self.low, self.high) == (0.0, 1.0)

    @property
    def given_by_user(self) -> bool:
        """True when an option said it (so it holds for every model of the command)."""
        return self.source in ("--input-range", "--preprocess")

    def check_channels(self, channels: int, where: str) -> None:
        """BadValue("preprocess") when the preprocessing does not keep `channels` channels (the
        ImageNet modes caffe and torch are for RGB images)."""
        if self.preprocess is None:
            return
        probe = np.full((1, 1, 1, channels), 0.5, np.float32)
        try:
            fits = self.apply(probe).shape == probe.shape
        except Exception:  # Keras' functions raise on shapes they cannot take
            fits = False
        if not fits:
            raise BadValue("preprocess", f"{self.preprocess!r} is for RGB images, and {where} takes {channels} "
                                         f"channel(s)")

    # ------------------------------------------------------------------ the map, in NumPy
    def apply(self, images) -> np.ndarray:
        """(N, H, W, C) float32 in [0, 1] -> what the model takes, float32 (NumPy; a new array)."""
        x = np.array(images, np.float32)
        if self.preprocess is None:
            return (self.low + (self.high - self.low) * x).astype(np.float32)
        return np.asarray(preprocess_function(self.preprocess)(255.0 * x), np.float32)

    def scale(self, channels: int) -> np.ndarray:
        """(C,) model units per unit of pixel, per channel: how an eps in [0, 1] reads in the model's units."""
        black, white = self.bounds(channels)
        return np.abs(white - black)

    def bounds(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(C,) each: what black (0) and white (1) become in the model's units."""
        zero, one = (self.apply(np.full((1, 1, 1, channels), v, np.float32))[0, 0, 0] for v in (0.0, 1.0))
        return zero.astype(np.float64), one.astype(np.float64)

    def in_model_units(self, eps: float, channels: int) -> float | list[float]:
        """An eps (a fraction of the pixel range) in the model's own units: one number, or one per channel."""
        scaled = [float(eps) * s for s in self.scale(channels)]
        return scaled[0] if max(scaled) - min(scaled) <= 1e-9 * max(1.0, max(scaled)) else scaled

    # ------------------------------------------------------------------ saying it
    def describe(self) -> str:
        """'[0, 255]', '[-1, 1]', 'preprocess_input of mobilenet_v2 ([-1, 1])', ..."""
        if self.preprocess is None:
            return f"[{_fmt(self.low)}, {_fmt(self.high)}]"
        if self.preprocess in MODES:
            return f"keras.applications preprocess_input mode {self.preprocess!r} ({MODES[self.preprocess]})"
        return f"keras.applications.{self.preprocess}.preprocess_input of 0-255 pixels"

    def notice(self, model_name: str) -> str:
        """The one line a command prints about it."""
        how = {"--input-range": "as given by --input-range", "--preprocess": "as given by --preprocess",
               DEFAULT_SOURCE: "nothing at its input says otherwise; see --input-range / --preprocess"}
        return (f"input domain of {model_name}: {self.describe()} ({how.get(self.source, self.source)}); "
                f"pixels in [0, 1] are mapped to it, so eps and fills are fractions of the pixel range")

    def to_dict(self, channels: int) -> dict:
        low, high = self.bounds(channels)
        return {"range": [float(low.min()), float(high.max())], "preprocess": self.preprocess,
                "source": self.source, "scale": [float(s) for s in self.scale(channels)],
                "black": [float(v) for v in low], "white": [float(v) for v in high]}


def preprocess_function(name: str):
    """Keras' own `preprocess_input` for a mode or a family (imports keras)."""
    import functools

    import keras

    if name in MODES:
        return functools.partial(keras.applications.imagenet_utils.preprocess_input, mode=name)
    return getattr(keras.applications, name).preprocess_input


# ---------------------------------------------------------------------------- from the model
_AUGMENTATION_PREFIX = "Random"   # RandomFlip, RandomRotation, ...: the identity at inference


def _leading_layers(model, depth: int = 0):
    """The layers a pixel meets first, in order: through nested models, past augmentation layers
    (the identity at inference), up to the first layer that computes something else."""
    import keras

    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model) and depth < 3:
            inner = list(_leading_layers(layer, depth + 1))
            yield from inner
            if inner and inner[-1] is None:
                return
            continue
        if type(layer).__name__.startswith(_AUGMENTATION_PREFIX):
            continue
        yield layer
        if not isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            yield None  # the end of the leading preprocessing layers
            return


def infer(model) -> InputDomain:
    """The domain a model says it takes: a leading `Rescaling` by at most 1/100 (1/255, 1/127.5), or
    a leading `Normalization` whose mean is above 1.5 (ImageNet's in 0-255 units, as ConvNeXt's),
    means [0, 255]; anything else leaves the default [0, 1]."""
    import keras

    for layer in _leading_layers(model):
        if layer is None:
            break
        if isinstance(layer, keras.layers.Rescaling):
            scale = float(np.max(np.abs(np.asarray(layer.scale, np.float64))))
            if 0 < scale <= 0.01:
                return InputDomain(0.0, 255.0, source=f"inferred: the model starts with Rescaling(1/{1 / scale:.4g})")
            break
        mean = getattr(layer, "mean", None)
        if mean is not None:
            values = np.asarray(keras.ops.convert_to_numpy(mean), np.float64)
            if values.size and float(values.max()) > 1.5:
                return InputDomain(0.0, 255.0, source="inferred: the model starts with a Normalization "
                                                       f"of mean up to {float(values.max()):.4g}")
            break
    return InputDomain()
