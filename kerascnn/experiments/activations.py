"""Activations: the maps of one image after chosen layers, from one sub-model call.

A Keras sub-model from the model's input to the named layers' outputs (and the logits, so the
prediction comes from the same forward pass) shares the model's layers and weights. For a block of
the assignment's network (`conv1`, `conv2`) the maps are the block's *rectified* output, which with
batch norm is the layer `conv1_relu` (see `Subject.resolve_layer`); any other layer with (h, w, c)
output is read as it is. Default layers: the model's convolution layers (found by role).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kerascnn.data.tasks import Pick, pick
from kerascnn.errors import BadValue
from kerascnn.experiments.common import class_name
from kerascnn.model.predict import softmax
from kerascnn.outputs.document import Table

#: At most this many layers by default (evenly spread over the convolutions: first and last included).
DEFAULT_LAYERS = 4


def default_layers(subject) -> list[str]:
    """The convolution layers shown when none are named: all of them, or DEFAULT_LAYERS spread from
    the first to the last for a deep network (a MobileNetV2 has 52)."""
    convs = subject.conv_layers()
    if len(convs) <= DEFAULT_LAYERS:
        return convs
    picks = np.linspace(0, len(convs) - 1, DEFAULT_LAYERS).round().astype(int)
    return [convs[i] for i in dict.fromkeys(picks.tolist())]


@dataclass
class ActivationMaps:
    """Activation maps of one image after each of the named layers.

    image: (H, W, C) float32 in [0, 1], the input. maps[name]: (h, w, channels) float32 for each
    requested name, in the order asked; `layers[name]` is the model layer it was read from.
    """
    image: np.ndarray
    maps: dict[str, np.ndarray]
    layers: dict[str, str]
    probabilities: np.ndarray  # (K,) float64: the model's softmax for the image, from the same call
    class_names: tuple | None = None
    label: int | None = None   # the image's true class, when known
    description: str = ""      # the image, for titles
    index: int | None = None   # its test-set index (None for a picture file)

    @property
    def pred(self) -> int:
        return int(np.argmax(self.probabilities))

    def to_dict(self) -> dict:
        return {"image": self.description, "index": self.index, "label": self.label,
                "class_name": None if self.label is None else class_name(self.class_names, self.label),
                "predicted": self.pred, "predicted_name": class_name(self.class_names, self.pred),
                "probability": float(self.probabilities.max()),
                "layers": {name: {"layer": self.layers[name], "shape": list(m.shape), "min": float(m.min()),
                                  "max": float(m.max()), "mean": float(m.mean()),
                                  "all_zero_maps": int(np.sum(m.reshape(-1, m.shape[-1]).max(axis=0) <= 0))}
                           for name, m in self.maps.items()}}


def activations(subject, image: np.ndarray, layers=None) -> ActivationMaps:
    """The maps of `image` (H, W, C) float32 in [0, 1] after each layer in `layers` (None: the
    convolution layers), float32 (h, w, channels) each, and the class probabilities, in one call."""
    import keras


    if layers is not None and not list(layers):
        raise BadValue("layers", "is empty: name at least one layer with (h, w, channels) output")
    layers = list(default_layers(subject) if layers is None else layers)
    if not layers:
        raise BadValue("layers", f"{subject.name} has no convolution layers: name layers with (h, w, c) output")
    if len(set(layers)) != len(layers):
        raise BadValue("layers", f"a layer is named twice: {', '.join(layers)}")
    image = np.asarray(image, np.float32)
    expected = subject.input_shape
    if image.shape != expected and image.shape + (1,) != expected:
        raise BadValue("image", f"of shape {image.shape} does not fit the model's input {expected}")
    image = image.reshape(expected)
    resolved = {name: subject.resolve_layer(name, "layers") for name in layers}
    # On the graph of the logits model, which takes pixels in [0, 1] (the input domain folded in).
    model = subject.logits_model
    outputs = [subject.layer_tensors(resolved[name])[1] for name in layers] + list(model.outputs)
    sub = keras.Model(model.inputs[0], outputs)
    values = [keras.ops.convert_to_numpy(out) for out in sub(image[None], training=False)]
    # Mixed-precision models compute in bfloat16: hand back float32 maps either way.
    maps = {name: np.asarray(out, dtype=np.float32)[0] for name, out in zip(layers, values)}
    probabilities = softmax(np.asarray(values[-1], np.float32))[0]
    return ActivationMaps(image, maps, resolved, probabilities, subject.class_names)


# ---------------------------------------------------------------------------- the experiment
@dataclass
class Options:
    pick: Pick = field(default_factory=Pick)   # the image: a class, a test index or a picture file
    layers: tuple[str, ...] | None = None      # layers with (h, w, c) output (None: the convolutions)


Result = ActivationMaps


def run(subject, options: Options, progress=None) -> ActivationMaps:
    picked = pick(subject.task, options.pick)
    result = activations(subject, picked.image, options.layers)
    result.label, result.description, result.index = picked.label, picked.description, picked.index
    return result


def figures(result: ActivationMaps) -> dict:
    from kerascnn import plots

    truth = "" if result.label is None else f", true {class_name(result.class_names, result.label)}"
    title = (f"input: {result.description}\npredicted {class_name(result.class_names, result.pred)} "
             f"(P = {result.probabilities.max():.4f}){truth}")
    return {"activations.png": plots.activation_grid(result, input_title=title)}


def table(result: ActivationMaps):

    rows = []
    for name, maps in result.maps.items():
        layer = result.layers[name]
        dead = int(np.sum(maps.reshape(-1, maps.shape[-1]).max(axis=0) <= 0))
        rows.append([name if layer == name else f"{name} ({layer})", maps.shape[-1], f"{maps.shape[0]}x{maps.shape[1]}",
                     f"{maps.min():.3f}", f"{maps.max():.3f}", dead])
    return Table(["layer", "maps", "size", "min", "max", "all zero"], rows,
                 f"{result.description}: predicted {class_name(result.class_names, result.pred)} (P = {result.probabilities.max():.4f})",
                 numeric=(1, 3, 4, 5))


def summary(result: ActivationMaps) -> str:
    shown = ", ".join(f"{name} ({m.shape[-1]} maps of {m.shape[0]}x{m.shape[1]})" for name, m in result.maps.items())
    return (f"The maps of {result.description} after {shown}; the model predicts "
            f"{class_name(result.class_names, result.pred)} (P = {result.probabilities.max():.4f}).")
