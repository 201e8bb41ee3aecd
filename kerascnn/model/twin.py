"""The float32 twin of a mixed-precision model: the same weights, computing in float32.

Gradients in bfloat16 keep 8 bits of mantissa: they weaken attacks and break integrated gradients'
completeness, and ONNX Runtime and TFLite have no bfloat16 kernels. So the Subject studies, and
export writes, a mixed-precision model through its twin.
"""
from __future__ import annotations

import json

from kerascnn.errors import UserError, first_line


def computes_in(model) -> str | None:
    """The first dtype policy below float32 among the model's layers (nested models included), or None."""
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        stack.extend(getattr(layer, "layers", []))
        policy = getattr(getattr(layer, "dtype_policy", None), "name", "float32")
        if policy != "float32":
            return policy
    return None


def float32_twin(model):
    """`model` itself, or a copy with its weights computing in float32 if any layer computes in less."""
    try:
        return _with_policies(model, lambda policy: "float32")
    except Exception as e:
        raise UserError(f"model computes in {computes_in(model)}; its float32 twin cannot be built: "
                        f"{first_line(e)}") from None


def bfloat16_twin(model):
    """A copy of `model` whose layers compute in bfloat16 (Keras' mixed_bfloat16: float32 weights,
    bfloat16 arithmetic), for sampling where only the predicted class is read (certification's
    counts). Its predictions differ from the float32 model's on inputs near a decision boundary
    (README's "Certified robustness" says how often on cnn_smooth), so a certificate from it is the
    bfloat16 model's. UserError where the copy cannot be built (a custom layer that ignores its dtype)."""
    try:
        return _with_policies(model, lambda policy: "mixed_bfloat16" if policy == "float32" else policy)
    except Exception as e:
        raise UserError(f"precision: no bfloat16 copy of the model can be built: {first_line(e)}") from None


def _with_policies(model, policy):
    """A copy of `model` (its config rebuilt, its weights set) in which every dtype policy named p is
    named policy(p); `model` itself where that changes no name."""
    import keras

    changed = []

    def rewrite(config: dict):  # every dict of the model's config, innermost first
        if config.get("class_name") == "DTypePolicy":
            name = config["config"].get("name")
            changed.append(policy(name) != name)
            return {**config, "config": {**config["config"], "name": policy(name)}}
        return config

    config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)), object_hook=rewrite)
    if not any(changed):
        return model
    twin = keras.saving.deserialize_keras_object(config)
    twin.set_weights(model.get_weights())
    return twin
