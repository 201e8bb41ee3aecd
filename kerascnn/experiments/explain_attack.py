"""Explaining an attack: the noise attack (kerascnn.attacks.noise) turns one image into the target
class; the maps of the clean image (for its prediction) and of the attacked image (for its own)
side by side, with the rank correlation of each method's |map| between the two: what did the
noise change in what the model looks at?
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kerascnn import attacks
from kerascnn.data.tasks import Pick, pick
from kerascnn.errors import BadValue
from kerascnn.experiments import noise as noise_experiment
from kerascnn.experiments.common import attack_settings, class_name, resolve_class
from kerascnn.experiments.explain import Explanation, completeness_of
from kerascnn.attributions import gradients as attributions
from kerascnn.attributions.gradients import LABELS, Settings
from kerascnn.attributions.faithfulness import spearman
from kerascnn.outputs.document import Table

ATTACKS = ("noise",)


@dataclass
class Options:
    pick: Pick = field(default_factory=Pick)          # the clean image
    attack: str = "noise"                             # the attack (the noise attack; others may follow)
    target: str | int | None = None                   # the attack's target class (None: 4, or the last class)
    noise: noise_experiment.Options = field(default_factory=noise_experiment.Options)  # its settings
    settings: Settings = field(default_factory=Settings)


@dataclass
class Result:
    clean: object                     # experiments.explain.Explanation of the clean image
    adversarial: object               # ... of the attacked image
    noise: np.ndarray                 # (H, W, C) attacked minus clean
    target: int
    success: bool                     # the attack reached the target at its confidence
    steps_used: int
    correlation: dict                 # {method: Spearman rank correlation of |map|, clean vs attacked}
    attack: str
    description: str

    def to_dict(self) -> dict:
        names = self.clean.class_names
        return {"image": self.description, "index": self.clean.index, "label": self.clean.label,
                "class_name": None if self.clean.label is None else class_name(names, self.clean.label),
                "attack": self.attack, "target": self.target,
                "target_name": class_name(names, self.target), "success": self.success, "steps_used": self.steps_used,
                "noise": {"l2": float(np.sqrt(np.square(self.noise, dtype=np.float64).sum())),
                          "linf": float(np.abs(self.noise).max())},
                "clean": self.clean.to_dict(), "attacked": self.adversarial.to_dict(),
                "rank_correlation_abs": {m: float(c) for m, c in self.correlation.items()}}


def run(subject, options: Options, progress=None) -> Result:

    if options.attack not in ATTACKS:
        raise BadValue("attack", f"must be one of {', '.join(ATTACKS)}, got {options.attack!r}")
    settings = options.settings.check()
    layer = attributions.gradcam_layer(subject, settings.layer) if "gradcam" in settings.methods else None
    target = resolve_class(subject.task, options.target, noise_experiment.ASSIGNMENT_TARGET, "target")
    picked = pick(subject.task, options.pick)
    n = options.noise
    attacked = attacks.noise(subject.logits_model, picked.image[None], target, confidence=n.confidence, beta=n.beta,
                             progress=progress, **attack_settings(n))
    images = np.stack([picked.image, attacked.images[0]])
    probabilities = subject.probabilities(images)
    predicted = probabilities.argmax(axis=1)
    maps = attributions.explain(subject.logits_model, images, predicted, settings, layer)
    seconds = {m: s / 2 for m, s in maps.seconds.items()}
    clean, adversarial = (Explanation(images[i], picked.label, int(predicted[i]), probabilities[i],
                                      {m: v[i] for m, v in maps.maps.items()}, completeness_of(maps, i), seconds,
                                      settings, layer, what, subject.class_names, picked.index)
                          for i, what in enumerate((picked.description, f"{picked.description}, attacked")))
    correlation = {m: float(spearman(np.abs(v[0]).ravel(), np.abs(v[1]).ravel())) for m, v in maps.maps.items()}
    return Result(clean, adversarial, attacked.noise[0], target, bool(attacked.success[0]),
                  int(attacked.steps_used[0]), correlation, options.attack, picked.description)


def figures(result: Result) -> dict:
    from kerascnn import plots

    return {"explain_attack.png": plots.attack_explanations(result)}


def arrays(result: Result) -> dict:
    methods = list(result.clean.maps)
    return {"clean_maps.npy": np.stack([result.clean.maps[m] for m in methods]),
            "attacked_maps.npy": np.stack([result.adversarial.maps[m] for m in methods]),
            "attacked.npy": result.adversarial.image, "noise.npy": result.noise}


def table(result: Result):

    names = result.clean.class_names
    c, a = result.clean, result.adversarial
    rows = []
    for m in c.maps:
        rows.append([LABELS[m], f"{_top_share(c.maps[m], a.maps[m]):.0%}", f"{result.correlation[m]:+.2f}",
                     f"{c.maps[m].max():.4g}", f"{a.maps[m].max():.4g}"])
    return Table(["method", "top-10% overlap", "rank corr. |map|", "clean max", "attacked max"], rows,
                 f"{result.description}: clean predicted {class_name(names, c.predicted)} "
                 f"(P = {c.probabilities[c.predicted]:.3f}), attacked predicted {class_name(names, a.predicted)} "
                 f"(P = {a.probabilities[a.predicted]:.3f}); each map explains its own image's prediction; "
                 f"top-10% overlap: the share of the clean map's top 10% pixels also in the attacked map's",
                 numeric=(1, 2, 3, 4))


def _top_share(first: np.ndarray, second: np.ndarray) -> float:
    k = max(1, first.size // 10)
    top = lambda v: set(np.argsort(-v.ravel(), kind="stable")[:k].tolist())  # noqa: E731
    return len(top(first) & top(second)) / k


def summary(result: Result) -> str:
    names = result.clean.class_names
    c, a = result.clean, result.adversarial
    outcome = ("reaches" if result.success else "does not reach") + f" {class_name(names, result.target)}"
    l2 = float(np.sqrt(np.square(result.noise, dtype=np.float64).sum()))
    low = min(result.correlation, key=result.correlation.get)
    high = max(result.correlation, key=result.correlation.get)
    return (f"The {result.attack} attack on {result.description} {outcome} in {result.steps_used} steps (noise L2 "
            f"{l2:.2f}, largest pixel change {np.abs(result.noise).max():.3f}): predicted "
            f"{class_name(names, c.predicted)} -> {class_name(names, a.predicted)}. Between the clean map (for "
            f"{class_name(names, c.predicted)}) and the attacked one (for {class_name(names, a.predicted)}), "
            f"{LABELS[high]} changes least (rank correlation {result.correlation[high]:+.2f}) and {LABELS[low]} most "
            f"({result.correlation[low]:+.2f}).")
