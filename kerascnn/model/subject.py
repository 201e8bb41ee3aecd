"""Subject: a Keras image classifier and its Task, the one thing every experiment studies.

Any Keras 3 `.keras` classifier works: functional or Sequential, any layer names, input (H, W, C),
K classes, ending in logits or in a softmax. Experiments always work on logits: when the model ends
in a softmax (a Softmax or softmax Activation layer, or a layer with activation="softmax"),
`logits_model` reads the values before it (tf-explain strips the softmax the same way), so attacks
and occlusion behave the same either way. Convolution layers are found by role: layers with a 4-D
output, in model order; those with a 4-D kernel are the ones with filters to draw.

The Subject also knows the model's input domain (kerascnn.model.domain): what it takes, from the library's
pixels in [0, 1]. Given (--input-range, --preprocess) or read off the model (a leading Rescaling or
Normalization means [0, 255]), its map is folded into `logits_model`, which every experiment calls
with pixels in [0, 1]; `own_logits_model` takes the model's own units.
"""
from __future__ import annotations

import os
import weakref
import zipfile
from pathlib import Path

import numpy as np

from kerascnn import DEFAULT_MODEL
from kerascnn.data.tasks import Task
from kerascnn.errors import BadValue, UserError, first_line
from kerascnn.model.domain import InputDomain, infer
from kerascnn.model.memo import Memo
from kerascnn.model.predict import predict_logits, softmax
from kerascnn.model.twin import computes_in, float32_twin

# ---------------------------------------------------------------------------- numbers


# ---------------------------------------------------------------------------- the softmax
def _is_softmax(activation) -> bool:
    return getattr(activation, "__name__", None) == "softmax"


def strip_softmax(model):
    """(logits model, whether a final softmax was stripped). The logits model shares the model's
    layers; for a layer with activation="softmax" a linear twin carries a copy of its weights."""
    import keras

    if len(model.outputs) != 1:
        raise UserError(f"model {model.name} has {len(model.outputs)} outputs: expected one (the classes)")
    last = model.outputs[0]._keras_history[0]
    # One input as a tensor, not a list of one: called on an array, Keras would warn about the structure.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    if isinstance(last, keras.layers.Softmax) or (isinstance(last, keras.layers.Activation)
                                                   and _is_softmax(last.activation)):
        return keras.Model(inputs, last.input, name=f"{model.name}_logits"), True
    if _is_softmax(getattr(last, "activation", None)):
        config = last.get_config() | {"activation": "linear", "name": f"{last.name}_logits"}
        twin = type(last).from_config(config)
        outputs = twin(last.input)
        twin.set_weights(last.get_weights())
        return keras.Model(inputs, outputs, name=f"{model.name}_logits"), True
    return model, False


# ---------------------------------------------------------------------------- loading
def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """The model file: `path` (a .keras file, or a run folder holding model.keras) or the pretrained default."""
    path = Path(path).expanduser() if path else DEFAULT_MODEL
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise UserError(f"no model.keras in folder {path} (a run folder of `kerascnn train`, or a .keras file)")
        path = path / "model.keras"
    if not path.exists():
        hint = " (the pretrained default: train one with `kerascnn train`)" if path == DEFAULT_MODEL else ""
        raise UserError(f"model file not found: {path}{hint}")
    return path


def load_keras(path: str | os.PathLike | None = None):
    """Loads a `.keras` file; a missing, truncated or foreign file raises UserError in one line."""
    path = resolve_model_path(path)
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a Keras model file (.keras zip archive)")
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises ValueError, KeyError, OSError... for broken archives
        raise UserError(f"cannot load model {path}: {first_line(e)}") from None


def classifier_shape(model, where: str) -> tuple[tuple[int, int, int], int]:
    """((H, W, C), K) of an image classifier; UserError naming what it is otherwise."""
    inputs = getattr(model, "inputs", None) or []
    ins = [tuple(t.shape) for t in inputs]
    outs = [tuple(t.shape) for t in (getattr(model, "outputs", None) or [])]
    if len(ins) != 1 or len(ins[0]) != 4 or None in ins[0][1:] or len(outs) != 1 or len(outs[0]) != 2 \
            or outs[0][1] is None or outs[0][1] < 2:
        raise UserError(f"{where} is not an image classifier: expected one input (H, W, C) and one output "
                        f"of class scores, got inputs {ins or 'none'} -> outputs {outs or 'none'}")
    return tuple(int(d) for d in ins[0][1:]), int(outs[0][1])


_DERIVED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _derive(model, domain, where: str, channels: int) -> tuple:
    """(model studied, its original dtype or None, domain, own logits model, ends in softmax, logits
    model from pixels in [0, 1]). A mixed-precision model is studied through its float32 twin (same
    weights): bfloat16 gradients would weaken the attacks and break integrated gradients' completeness."""
    twin_of = computes_in(model)
    if twin_of is not None:
        model = float32_twin(model)
    domain = infer(model) if domain is None else domain
    domain.check_channels(channels, where)
    own, ends_in_softmax = strip_softmax(model)
    if domain.identity:
        logits = own
    else:
        from kerascnn.model.folding import fold

        logits = fold(own, domain)
    return model, twin_of, domain, own, ends_in_softmax, logits


class Subject:
    """A classifier and its task. `model` as loaded; `logits_model` its logits from pixels in [0, 1]
    (the input domain folded in; float32 when called through `logits`); `own_logits_model` its logits
    from its own input units; `domain` what it takes (None: inferred from the model); `path` the file
    it came from (None when built in memory)."""

    def __init__(self, model, task: Task | None = None, path: Path | None = None, check: bool = True,
                 domain: InputDomain | None = None):
        self.model = model
        self.task = task or Task()
        self.path = path
        where = str(path) if path else f"model {model.name}"
        self.input_shape, self.num_classes = classifier_shape(model, where)
        # The models derived below are made once per model and domain: a notebook that calls the API
        # twenty times on one model then traces each compiled function once, not twenty times.
        derived = _DERIVED.setdefault(model, {})
        key = repr(domain)
        if key not in derived:
            derived[key] = _derive(model, domain, where, self.input_shape[-1])
        self.model, self.twin_of, self.domain, self.own_logits_model, self.ends_in_softmax, self.logits_model = \
            derived[key]
        # results for this subject's logits model, which no experiment changes (the randomisation check changes
        # a clone): a report's faithfulness and explanation-metrics sections explain the same first test images
        # with the same settings, and its robustness and certified sections may ask for the same smallest L2
        # changes (see kerascnn.model.memo)
        self.memo = Memo()
        if check:
            self.check_task()

    @classmethod
    def load(cls, model_path: str | os.PathLike | None = None, task: Task | None = None,
             domain: InputDomain | None = None) -> "Subject":
        path = resolve_model_path(model_path)
        return cls(load_keras(path), task, path, domain=domain)

    def domain_dict(self) -> dict:
        """The input domain as result.json records it."""
        return self.domain.to_dict(self.input_shape[-1])

    def eps_in_model_units(self, eps: float) -> float | list[float]:
        """An eps in [0, 1] pixel units, in the model's own input units (per channel where they differ)."""
        return self.domain.in_model_units(eps, self.input_shape[-1])

    def layer_tensors(self, name: str):
        """(input, output) tensors of layer `name` in the graph of `logits_model` (pixels in [0, 1])."""
        from kerascnn.model.folding import path_tensors

        return path_tensors(self.logits_model, name)

    def check_task(self) -> None:
        """UserError naming both shapes when the model does not fit the task's images and classes."""
        shape, classes = self.task.input_shape, self.task.num_classes
        if self.input_shape != shape or self.num_classes != classes:
            where = self.path or f"model {self.model.name}"
            raise UserError(f"{where} takes {self.input_shape} images to {self.num_classes} classes, but "
                            f"{self.task.name} has {shape} images in {classes} classes: pass the model's "
                            f"own dataset (--dataset / --data-dir)")

    # ------------------------------------------------------------------ what it is
    @property
    def name(self) -> str:
        return self.path.parent.name if self.path and self.path.name == "model.keras" else self.model.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.task.class_names

    def label(self, k: int) -> str:
        return self.task.label(k)

    # ------------------------------------------------------------------ predictions
    def logits(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """(N, H, W, C) float32 in [0, 1] -> (N, K) float32 logits."""
        return predict_logits(self.logits_model, images, batch_size)

    def probabilities(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """(N, H, W, C) -> (N, K) float64 class probabilities."""
        return softmax(self.logits(images, batch_size))

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """The fraction of `images` whose top class is their label."""
        return float(np.mean(self.logits(images).argmax(axis=1) == labels))

    # ------------------------------------------------------------------ layers by role
    def spatial_layers(self) -> list[str]:
        """Layers whose output is a stack of maps (N, h, w, c), input layer excluded, in model order."""
        import keras

        return [layer.name for layer in self.model.layers
                if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4]

    def conv_layers(self) -> list[str]:
        """Spatial layers with a 4-D kernel (kh, kw, C_in, F): the convolutions, in model order."""
        spatial = set(self.spatial_layers())
        return [layer.name for layer in self.model.layers if layer.name in spatial
                and len(getattr(getattr(layer, "kernel", None), "shape", ())) == 4]

    def last_conv_layer(self) -> str:
        convs = self.conv_layers() or self.spatial_layers()
        if not convs:
            raise UserError(f"{self.name} has no convolution layers (no layer with (h, w, channels) output)")
        return convs[-1]

    def resolve_layer(self, name: str, param: str = "layer") -> str:
        """The layer to read for `name`: a block of the assignment's network gives its rectified output
        (`conv1` -> `conv1_relu` with batch norm); any other spatial layer is taken as it is."""
        valid = self.spatial_layers()
        if not valid:
            raise BadValue(param, f"{self.name} has no layer with (h, w, channels) output")
        if name in valid:
            return f"{name}_relu" if f"{name}_relu" in valid else name
        names = {layer.name for layer in self.model.layers}
        what = "has no maps (its output is not (h, w, channels))" if name in names else "is not a layer of the model"
        raise BadValue(param, f"{name!r} {what}: choose from {', '.join(valid)}")
