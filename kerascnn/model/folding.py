"""Folding an input domain into a model: a new functional model that takes pixels in [0, 1], maps
them to what the model takes (kerascnn.model.domain) and then runs the model's own layers (shared, not
copied: the same weights). The folded graph is flat, so a layer's output on it is found by walking
back from the output (`path_tensors`), for Grad-CAM, activation maps and filter maximisation.
"""
from __future__ import annotations

import keras

from kerascnn.model.domain import InputDomain, preprocess_function


@keras.saving.register_keras_serializable(package="kerascnn")
class PixelMap(keras.layers.Layer):
    """Pixels (N, H, W, C) in [0, 1] -> the model's input (kerascnn.model.domain.InputDomain), in float32."""

    def __init__(self, low: float = 0.0, high: float = 1.0, preprocess: str | None = None, **kwargs):
        kwargs.setdefault("dtype", "float32")   # a map of pixels: never in a mixed policy's bfloat16
        super().__init__(**kwargs)
        self.low, self.high, self.preprocess = float(low), float(high), preprocess

    def call(self, x):
        x = keras.ops.cast(x, "float32")
        if self.preprocess is None:
            return x * (self.high - self.low) + self.low
        return keras.ops.cast(preprocess_function(self.preprocess)(x * 255.0), "float32")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return super().get_config() | {"low": self.low, "high": self.high, "preprocess": self.preprocess}


def fold(model, domain: InputDomain, name: str | None = None):
    """`model` behind the map of `domain`: a functional model from pixels in [0, 1] to the model's
    outputs, sharing its layers. `model` itself when the domain is [0, 1]."""
    if domain.identity:
        return model
    # One graph from the input to the output, whatever the model's class (a Sequential included).
    functional = keras.Model(model.inputs[0], model.outputs[0], name=model.name)
    pixels = keras.Input(tuple(model.inputs[0].shape[1:]), name="pixels")
    mapped = PixelMap(domain.low, domain.high, domain.preprocess, name="pixel_map")(pixels)

    def call(layer, *args, **kwargs):  # the first layers take the mapped pixels instead of the new input
        return layer(*(mapped if a is pixels else a for a in args), **kwargs)

    return keras.models.clone_model(functional, input_tensors=pixels, clone_function=lambda layer: layer,
                                    call_function=call)


def path_tensors(model, name: str):
    """(input, output) tensors of layer `name` on the path from the model's input to its output.
    `layer.output` is not always on it: a layer shared by a folded model, or a Sequential model loaded
    from a file (its layers keep their first symbolic outputs while its `outputs` come from a later
    build), would give a tensor the gradient cannot reach. Falls back to the layer's own tensors."""
    stack, seen = list(model.outputs), set()
    while stack:
        tensor = stack.pop()
        operation, node_index, _ = tensor._keras_history
        node = operation._inbound_nodes[node_index]
        if operation.name == name:
            inputs = node.input_tensors
            return (inputs[0] if len(inputs) == 1 else inputs), tensor
        if id(tensor) not in seen:
            seen.add(id(tensor))
            stack.extend(node.input_tensors)
    layer = model.get_layer(name)
    return layer.input, layer.output
