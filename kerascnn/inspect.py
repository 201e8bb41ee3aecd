"""Looking inside the network: the raw convolution kernels, and activation maps through a sub-model.

Nothing here draws (see `kerascnn.plots.inspection`); every function takes a model and arrays and
returns arrays or a small dataclass. Layer names are the model's own (`conv1`, `pool1`, `conv2`,
`pool2`); for a block name (`conv1`, `conv2`) the activation functions take the block's *rectified*
output, which with batch norm is the layer `conv1_relu` (see `model.block_output_layer`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FilterWeights", "ActivationMaps", "conv_layer_names", "spatial_layer_names",
           "filter_weights", "resolve_layer", "activation_model", "activations"]


@dataclass
class FilterWeights:
    """Raw kernels of one convolution layer, as they are (no normalisation).

    weights: (F, C_in, kh, kw) float32 -- F filters (all of them, or the one asked for), each as its
    C_in input-channel slices. conv1 of the CNN gives (32, 1, 3, 3); conv2 gives (32, 32, 3, 3), or
    (1, 32, 3, 3) for a single filter.
    """
    layer: str
    weights: np.ndarray
    filters: list[int]   # which filters of the layer the rows of `weights` are
    bias: np.ndarray     # (F,) their biases (not drawn; for reference)

    @property
    def limit(self) -> float:
        """Largest |weight|: the half-width of a colour scale centred on zero."""
        return float(np.max(np.abs(self.weights))) if self.weights.size else 0.0


@dataclass
class ActivationMaps:
    """Activation maps of one image after each of the named layers.

    image: (H, W, C) float32 in [0, 1], the input. maps[name]: (h, w, channels) float32 for each
    requested name, in the order asked; `layers[name]` is the model layer it was read from.
    """
    image: np.ndarray
    maps: dict[str, np.ndarray]
    layers: dict[str, str]
    probabilities: np.ndarray  # (10,) float64: the model's softmax for the image, from the same call

    @property
    def pred(self) -> int:
        return int(np.argmax(self.probabilities))


# ---------------------------------------------------------------------------- layer names
def conv_layer_names(model) -> list[str]:
    """Names of the model's Conv2D layers, in model order."""
    import keras

    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def spatial_layer_names(model) -> list[str]:
    """Names of the layers whose output is a stack of maps (N, h, w, c), input layer excluded."""
    import keras

    return [layer.name for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4]


def resolve_layer(model, name: str) -> str:
    """The model layer to read for `name`: a block name gives its rectified output (`conv1` ->
    `conv1_relu` with batch norm), any other layer with spatial output is taken as it is.

    Raises ValueError naming the valid choices for an unknown or non-spatial layer.
    """
    from kerascnn.model import block_output_layer

    valid = spatial_layer_names(model)
    if name in valid:
        try:
            resolved = block_output_layer(model, name)
        except ValueError:
            resolved = name
        return resolved if resolved in valid else name
    if name in {layer.name for layer in model.layers}:
        raise ValueError(f"layer {name!r} has no maps (its output is not (h, w, channels)): "
                         f"choose from {', '.join(valid)}")
    raise ValueError(f"unknown layer {name!r}: choose from {', '.join(valid)}")


# ---------------------------------------------------------------------------- filters
def filter_weights(model, layer: str = "conv1", filter: int | None = None) -> FilterWeights:
    """The raw kernels of Conv2D `layer`: all its filters, or only filter number `filter` (0-based).

    Keras stores a kernel as (kh, kw, C_in, F); this returns it as (F, C_in, kh, kw).
    Raises ValueError for a layer that is not a convolution (listing those that are) or a filter
    number out of range.
    """
    convs = conv_layer_names(model)
    if layer not in convs:
        raise ValueError(f"unknown convolution layer {layer!r}: choose from {', '.join(convs)}")
    conv = model.get_layer(layer)
    kernel = np.asarray(conv.kernel.numpy(), np.float32)          # (kh, kw, C_in, F)
    bias = (np.asarray(conv.bias.numpy(), np.float32) if conv.use_bias
            else np.zeros(kernel.shape[-1], np.float32))
    weights = kernel.transpose(3, 2, 0, 1)                          # (F, C_in, kh, kw)
    count = weights.shape[0]
    if filter is None:
        return FilterWeights(layer, weights, list(range(count)), bias)
    if not 0 <= filter < count:
        raise ValueError(f"--filter must be between 0 and {count - 1} for {layer}, got {filter}")
    return FilterWeights(layer, weights[filter:filter + 1], [int(filter)], bias[filter:filter + 1])


# ---------------------------------------------------------------------------- activations
def activation_model(model, layers: list[str], with_logits: bool = False):
    """A keras.Model from the model's input to the outputs of `layers` (resolved by
    `resolve_layer`), one output per name, in order; then the model's logits if `with_logits`.
    It shares the model's layers and weights (nothing is copied)."""
    import keras

    outputs = [model.get_layer(resolve_layer(model, name)).output for name in layers]
    if with_logits:
        outputs += list(model.outputs)
    # One input as a tensor, not a one-element list, so that calling it with an array matches.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs)


def activations(model, image: np.ndarray, layers: list[str] | tuple[str, ...] = ("conv1", "conv2")
                ) -> ActivationMaps:
    """The activation maps of one image after each named layer, from one sub-model call.

    image: (28, 28, 1) or (28, 28) float32 in [0, 1]. Returns ActivationMaps whose maps are
    float32 (h, w, channels), e.g. conv1 (28, 28, 32) and conv2 (14, 14, 32) for the CNN; the
    sub-model also outputs the logits, so the prediction comes from the same forward pass.
    """
    import keras

    from kerascnn.evaluation import softmax

    layers = list(layers)
    if not layers:
        raise ValueError("name at least one layer")
    if len(set(layers)) != len(layers):
        raise ValueError(f"a layer is named twice: {', '.join(layers)}")
    image = np.asarray(image, np.float32)
    expected = tuple(int(d) for d in model.input_shape[1:])
    if image.shape != expected and image.shape + (1,) != expected:
        raise ValueError(f"image of shape {image.shape} does not fit the model's input {expected}")
    image = image.reshape(expected)
    resolved = {name: resolve_layer(model, name) for name in layers}
    sub = activation_model(model, layers, with_logits=True)
    outputs = [keras.ops.convert_to_numpy(out) for out in sub(image[None], training=False)]
    # Mixed-precision models compute in bfloat16: hand back float32 maps either way.
    maps = {name: np.asarray(out, dtype=np.float32)[0] for name, out in zip(layers, outputs)}
    probabilities = softmax(np.asarray(outputs[-1], np.float32))[0]
    return ActivationMaps(image, maps, resolved, probabilities)
