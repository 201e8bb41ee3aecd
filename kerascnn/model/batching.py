"""How many images go through a model at once: from the model's size, not a fixed number.

The assignment's network holds about 80,000 activations per MNIST image, so 1,000 images a call
is a few hundred MB; a MobileNetV2 at 224 px holds about 17 million, and 1,000 images would be
68 GB. `batch_size` divides a memory budget by what one image costs: its activations (every
layer's output, nested models included), three times over when gradients flow back through them.
"""
from __future__ import annotations

import math
import os
import weakref

#: Bytes one batch's activations may take (KERASCNN_BATCH_MB overrides, in MiB).
DEFAULT_BUDGET = 2 << 30
#: Never more than this many images a call: the old fixed size, which small models keep.
CAP = 1000
_FLOATS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def activations_per_image(model) -> int:
    """Floats one image produces across the model's layers (outputs of every layer, nested models'
    layers included, the input counted once)."""
    cached = _FLOATS.get(model)
    if cached is not None:
        return cached
    total = 0
    for layer in getattr(model, "layers", []):
        inner = getattr(layer, "layers", None)
        if inner:
            total += activations_per_image(layer)
            continue
        try:
            outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        except (AttributeError, ValueError):  # a layer called more than once, or never: skip it
            continue
        for out in outputs:
            shape = getattr(out, "shape", None) or ()
            total += math.prod(int(d) for d in shape[1:] if d is not None)
    total = max(total, 1)
    _FLOATS[model] = total
    return total


def budget_bytes() -> int:
    value = os.environ.get("KERASCNN_BATCH_MB")
    return int(float(value) * (1 << 20)) if value else DEFAULT_BUDGET


def batch_size(model, *, gradients: bool = False, copies: int = 1, cap: int = CAP) -> int:
    """Images per call of `model` that fit the budget: `gradients` when a tape runs back through the
    model (about three times the memory of a forward pass); `copies` images per item (e.g. the
    interpolation steps of integrated gradients), so the result counts items. At least 1."""
    per_image = activations_per_image(model) * 4 * (3 if gradients else 1)
    return max(1, min(cap, budget_bytes() // max(1, per_image * copies)))
