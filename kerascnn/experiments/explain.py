"""Explain one image: a map per method (kerascnn.attributions.gradients) of the pixels that raise one class's
logit, the predicted class by default. Faithfulness scores and the randomisation check are the
experiment `faithfulness`; maps of an attacked image beside the clean one are `explain_attack`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kerascnn.data.tasks import Pick, pick
from kerascnn.experiments.common import class_name
from kerascnn.attributions import gradients as attributions
from kerascnn.attributions.gradients import LABELS, Settings
from kerascnn.outputs.document import Table


@dataclass
class Options:
    pick: Pick = field(default_factory=Pick)          # the image: a class, a test index or a picture file
    target: str | int | None = None                   # the class whose logit is explained (None: the predicted one)
    settings: Settings = field(default_factory=Settings)  # the methods and their settings


@dataclass
class Explanation:
    """Maps of one image. image (H, W, C) in [0, 1]; maps {method: (H, W) float32}; probabilities (K,)."""
    image: np.ndarray
    label: int | None                  # true class (None for a picture file)
    target: int                        # the class whose logit is explained
    probabilities: np.ndarray
    maps: dict
    completeness: dict | None          # integrated gradients: sum, difference, error (floats)
    seconds: dict
    settings: Settings
    layer: str | None                  # Grad-CAM's layer (None when not asked for)
    description: str
    class_names: tuple | None = None
    index: int | None = None           # the test-set index of the image (None for a picture file)

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.probabilities))

    def patch(self) -> int:
        return self.settings.patch(self.image.shape)

    def method_note(self, method: str) -> str:
        """What the map of `method` is, with its own number where it has one."""
        s = self.settings
        if method == "smoothgrad":
            return f"{s.smoothgrad_samples} copies, noise std {s.smoothgrad_noise:g}"
        if method == "integrated-gradients":
            c = self.completeness
            return f"sum {c['sum']:.2f} \u2248 \u0394logit {c['difference']:.2f}" if c else f"{s.ig_steps} steps"
        if method == "gradcam":
            return f"layer {self.layer}"
        if method == "occlusion":
            stride = self.settings.stride(self.image.shape)
            return f"black {self.patch()}x{self.patch()} patch, stride {stride}, logit drop"
        return "d logit / d pixel"

    def to_dict(self) -> dict:
        names = self.class_names
        out = {"image": self.description, "index": self.index, "label": self.label,
               "class_name": None if self.label is None else class_name(names, self.label), "target": self.target,
               "target_name": class_name(names, self.target), "predicted": self.predicted,
               "probabilities": self.probabilities.round(6).tolist(), "methods": list(self.maps),
               "settings": {"ig_steps": self.settings.ig_steps, "smoothgrad_samples": self.settings.smoothgrad_samples,
                            "smoothgrad_noise": self.settings.smoothgrad_noise, "occlusion_patch": self.patch(),
                            "occlusion_stride": self.settings.stride(self.image.shape),
                            "occlusion_fill": 0.0, "baseline": "black (0)", "gradcam_layer": self.layer,
                            "seed": self.settings.seed},
               "maps": {m: {"min": float(v.min()), "max": float(v.max()), "sum": float(v.sum(dtype=np.float64)),
                            "seconds": round(self.seconds.get(m, 0.0), 4)} for m, v in self.maps.items()}}
        if self.completeness is not None:
            out["completeness"] = self.completeness
        return out


Result = Explanation


def target_class(subject, spec, predicted: np.ndarray) -> np.ndarray:
    """The classes to explain: `spec` (a name or number) for every image, or each image's prediction."""
    if spec is None:
        return np.asarray(predicted, np.int64)
    return np.full(len(predicted), subject.task.class_index(spec, "target"), np.int64)


def completeness_of(maps, i: int = 0) -> dict | None:
    """Image i's completeness numbers as floats (None when integrated gradients did not run)."""
    if maps.completeness is None:
        return None
    return {k: float(v[i]) for k, v in maps.completeness.items()}


def run(subject, options: Options, progress=None) -> Explanation:

    settings = options.settings.check()
    layer = attributions.gradcam_layer(subject, settings.layer) if "gradcam" in settings.methods else None
    picked = pick(subject.task, options.pick)
    probabilities = subject.probabilities(picked.image[None])[0]
    target = target_class(subject, options.target, probabilities.argmax()[None])
    maps = attributions.explain(subject.logits_model, picked.image[None], target, settings, layer)
    return Explanation(picked.image, picked.label, int(target[0]), probabilities,
                       {m: v[0] for m, v in maps.maps.items()}, completeness_of(maps), maps.seconds, settings,
                       layer, picked.description, subject.class_names, picked.index)


def figures(result: Explanation) -> dict:
    from kerascnn import plots

    return {"explain.png": plots.explanation_row(result)}


def arrays(result: Explanation) -> dict:
    return {"maps.npy": np.stack([result.maps[m] for m in result.maps]), "image.npy": result.image}


def table(result: Explanation):

    rows = []
    for m, v in result.maps.items():
        share = positive_share(v)
        rows.append([LABELS[m], f"{v.min():.4g}", f"{v.max():.4g}", f"{v.sum(dtype=np.float64):.4g}",
                     "-" if share is None else f"{share:.0%}", f"{result.seconds.get(m, 0):.2f}",
                     result.method_note(m)])
    k = class_name(result.class_names, result.target)
    return Table(["method", "min", "max", "sum", "top 10% share", "seconds", "what"], rows,
                 f"{result.description}: maps of the logit of {k} (rows in the order drawn); top 10% share: "
                 f"the share of the map's positive mass in its top 10% of pixels; \u0394logit: logit(image) - logit(black)",
                 numeric=(1, 2, 3, 4, 5))


def positive_share(values: np.ndarray) -> float | None:
    """How concentrated a map is: the fraction of its positive mass held by its top 10% of pixels."""
    positive = np.sort(np.clip(values.ravel().astype(np.float64), 0, None))[::-1]
    total = positive.sum()
    return None if total <= 0 else float(positive[:max(1, len(positive) // 10)].sum() / total)


def summary(result: Explanation) -> str:
    names = result.class_names
    k, p = class_name(names, result.target), result.predicted
    text = (f"{result.description}: predicted {class_name(names, p)} (P = {result.probabilities[p]:.4f}); the maps "
            f"explain the logit of {k}" + (" (the prediction)." if p == result.target else "."))
    c = result.completeness
    if c is not None:
        text += (f" Integrated gradients' attributions sum to {c['sum']:.4f} against logit(image) - logit(black) = "
                 f"{c['difference']:.4f}: completeness error {c['relative_error']:.2%} with {result.settings.ig_steps} steps.")
    total = sum(result.seconds.values())
    return text + f" All {len(result.maps)} method(s) took {total:.2f} s."
