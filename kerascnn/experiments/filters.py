"""Filters: the raw kernels of a convolution layer, drawn on one colour scale centred on zero.

Any convolution layer (a layer with a 4-D kernel (kh, kw, C_in, F)) and any number of input
channels. The weights are shown as they are (no activation maximisation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.errors import BadValue
from kerascnn.outputs.document import Table


@dataclass
class FilterWeights:
    """Raw kernels of one convolution layer, as they are (no normalisation).

    weights: (F, C_in, kh, kw) float32 -- F filters (all of them, or the one asked for), each as its
    C_in input-channel slices. conv1 of the MNIST CNN gives (32, 1, 3, 3); conv2 gives (32, 32, 3, 3),
    or (1, 32, 3, 3) for a single filter.
    """
    layer: str
    weights: np.ndarray
    filters: list[int]   # which filters of the layer the rows of `weights` are
    bias: np.ndarray     # (F,) their biases (not drawn; for reference)
    chosen: bool = False  # one filter was asked for (its slices are drawn; the file name says which)

    def to_dict(self) -> dict:
        """The kernels themselves, (F, C_in, kh, kw) as nested lists, with their filter numbers and biases."""
        return {"layer": self.layer, "shape": list(self.weights.shape), "filters": self.filters,
                "min": float(self.weights.min()), "max": float(self.weights.max()),
                "weights": self.weights.tolist(), "bias": self.bias.tolist()}

    @property
    def limit(self) -> float:
        """Largest |weight|: the half-width of a colour scale centred on zero."""
        return float(np.max(np.abs(self.weights))) if self.weights.size else 0.0


def filter_weights(subject, layer: str | None = None, filter: int | None = None) -> FilterWeights:
    """The raw kernels of convolution `layer` (None: the first): all its filters, or only filter
    number `filter` (0-based). Keras stores a kernel as (kh, kw, C_in, F); this returns (F, C_in, kh, kw)."""
    convs = subject.conv_layers()
    if not convs:
        raise BadValue("layer", f"{subject.name} has no convolution layers (no layer with a 4-D kernel)")
    layer = convs[0] if layer is None else layer
    if layer not in convs:
        raise BadValue("layer", f"{layer!r} is not a convolution layer of {subject.name}: choose from {', '.join(convs)}")
    conv = subject.model.get_layer(layer)
    kernel = np.asarray(conv.kernel.numpy(), np.float32)           # (kh, kw, C_in, F)
    bias = (np.asarray(conv.bias.numpy(), np.float32) if getattr(conv, "use_bias", False)
            else np.zeros(kernel.shape[-1], np.float32))
    weights = kernel.transpose(3, 2, 0, 1)                          # (F, C_in, kh, kw)
    count = weights.shape[0]
    if filter is None:
        return FilterWeights(layer, weights, list(range(count)), bias)
    if not 0 <= filter < count:
        raise BadValue("filter", f"must be between 0 and {count - 1} for {layer}, got {filter}")
    return FilterWeights(layer, weights[filter:filter + 1], [int(filter)], bias[filter:filter + 1], True)


# ---------------------------------------------------------------------------- the experiment
@dataclass
class Options:
    layer: str | None = None    # a convolution layer (None: the first one)
    filter: int | None = None   # one filter's input-channel slices (None: all filters)


Result = FilterWeights


def run(subject, options: Options, progress=None) -> FilterWeights:
    return filter_weights(subject, options.layer, options.filter)


def figures(result: FilterWeights) -> dict:
    from kerascnn import plots

    name = f"filters_{result.layer}_{result.filters[0]}.png" if result.chosen else f"filters_{result.layer}.png"
    return {name: plots.filter_grid(result)}


def table(result: FilterWeights):

    w = result.weights
    rows = [[f, f"{w[i].min():.4f}", f"{w[i].max():.4f}", f"{np.abs(w[i]).mean():.4f}", f"{result.bias[i]:.4f}"]
            for i, f in enumerate(result.filters)]
    return Table(["filter", "min", "max", "mean |w|", "bias"], rows,
                 f"{result.layer}: {w.shape[0]} filter(s) x {w.shape[1]} input channel(s) of {w.shape[2]}x{w.shape[3]}",
                 numeric=(0, 1, 2, 3, 4))


def summary(result: FilterWeights) -> str:
    w = result.weights
    return (f"{result.layer}: {w.shape[0]} filter(s) x {w.shape[1]} input channel(s) of {w.shape[2]}x{w.shape[3]}, "
            f"weights in [{w.min():.3f}, {w.max():.3f}], drawn on one scale centred on zero (blue < 0 < red).")
