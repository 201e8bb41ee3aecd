"""One served model: its Subject, one compiled function for the prediction and every activation map,
and its test-set predictions (for "misclassified" and "least confident"), all made once at start.

Pixels are float32 in [0, 1] (H, W, C) everywhere here, as in the library.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Served:
    """A model the page serves. `subject` is kerascnn's Subject (model, task, input domain);
    `forward` maps (N, H, W, C) pixels to [logits, *maps] (one traced tf.function); `test_probs` are
    the test set's class probabilities (N, K); `cache` keeps results computed once (kernels, feature
    visualisations)."""
    name: str
    subject: object
    layers: list[str]
    forward: object = None
    domain_args: dict = field(default_factory=dict)  # input_range= / preprocess= as given, for kc.attacks etc.
    test_probs: np.ndarray | None = None
    cache: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ what it is
    def describe_layer(self, name: str) -> list[int]:
        """(h, w, c) of a spatial layer's maps."""
        return [int(d) for d in self.subject.model.get_layer(name).output.shape[1:]]

    def describe(self) -> dict:
        s = self.subject
        shapes = {name: self.describe_layer(name) for name in self.layers}
        return {"name": self.name, "input_shape": list(s.input_shape), "classes": list(s.class_names),
                "dataset": s.task.name, "test_images": 0 if self.test_probs is None else len(self.test_probs),
                "layers": [{"name": n, "shape": shapes[n], "conv": n in s.conv_layers()} for n in self.layers],
                "input_domain": s.domain_dict(), "test_accuracy": self.test_accuracy()}

    def test_accuracy(self) -> float | None:
        if self.test_probs is None:
            return None
        return float(np.mean(self.test_probs.argmax(axis=1) == self.test_labels()))

    def test_labels(self) -> np.ndarray:
        return self.subject.task.test()[1]

    # ------------------------------------------------------------------ numbers
    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, C) -> (N, K) float64: the Subject's own compiled prediction (no maps)."""
        return self.subject.probabilities(np.asarray(pixels, np.float32))

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, dict]:
        """(N, H, W, C) -> (probabilities (N, K) float64, {layer: (N, h, w, c) float32})."""
        from kerascnn.model.predict import softmax

        outputs = self.forward(np.asarray(pixels, np.float32))
        logits, maps = outputs[0].numpy(), [m.numpy() for m in outputs[1:]]
        return softmax(logits), dict(zip(self.layers, maps))


def serve_model(name: str, subject, domain_args: dict | None = None, warm: bool = True) -> Served:
    """The Served of a Subject: its forward function traced and warmed, its test set predicted once."""
    import keras
    import tensorflow as tf

    layers = list(subject.spatial_layers())
    model = subject.logits_model
    maps = [subject.layer_tensors(n)[1] for n in layers]
    both = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, [model.outputs[0], *maps],
                       name=f"{subject.model.name}_served")
    spec = tf.TensorSpec((None, *subject.input_shape), tf.float32)
    forward = tf.function(lambda x: [tf.cast(t, tf.float32) for t in both(x, training=False)], input_signature=[spec])
    served = Served(name, subject, layers, forward, {k: v for k, v in (domain_args or {}).items() if v is not None})
    if warm:
        served.run(np.zeros((1, *subject.input_shape), np.float32))
        served.probabilities(np.zeros((1, *subject.input_shape), np.float32))
        x, _ = subject.task.test()
        served.test_probs = subject.probabilities(x)
        warm_api(served)
    return served


def warm_api(served: Served) -> None:
    """Calls each kc.attacks / kc.attributions function the page uses once on one image, so that
    their functions are traced before the first request."""
    import kerascnn as kc

    x = np.full((1, *served.subject.input_shape), 0.5, np.float32)
    y = np.zeros(1, np.int64)
    model, args = served.subject.model, served.domain_args
    kc.attacks.fgsm(model, x, y, 0.1, **args)
    kc.attacks.fgsm(model, np.repeat(x, 16, axis=0), np.zeros(16, np.int64), np.linspace(0, 0.3, 16), **args)
    kc.attacks.pgd(model, x, y, 0.1, steps=2, **args)
    for method in ("saliency", "gradcam", "smoothgrad", "integrated_gradients", "occlusion"):
        getattr(kc.attributions, method)(model, x, y, **args)


def unique_names(subjects) -> list[str]:
    """Names the page shows for the models: each Subject's name, numbered where two share one."""
    names, seen = [], {}
    for s in subjects:
        base = s.name
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names
