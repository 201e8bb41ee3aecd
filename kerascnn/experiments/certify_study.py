"""Certified against empirical (the report's certification section): for the same first `count` test
images, the certified L2 radius of the smoothed model (experiments.certify, randomized smoothing)
beside the smallest L2 change that fools its base model (experiments.minimal: FMN and FAB), and each
certificate attacked within its own radius (certify's --attack). A broken certificate would be a bug.

The smoothed model is the shipped cnn_smooth on MNIST-shaped tasks (trained with --noise-sd 0.25),
else the subject itself, which abstains wherever it was not trained with noise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kerascnn import SAVED_MODELS
from kerascnn.experiments import certify, minimal
from kerascnn.model.subject import Subject
from kerascnn.outputs.document import Table


@dataclass
class Options:
    count: int = 30                  # the first test images
    n: int = 1000                    # certify's samples (the radius can reach sigma * Phi^-1(alpha^(1/n)))
    sigma: float = 0.25
    smoothed: str | None = None      # the model to smooth (None: shipped cnn_smooth where it fits, else the subject)
    minimal_fab: bool = True         # the base model's minimal L2 change: also FAB-T (else FMN alone)
    minimal_steps: int = 300         # FMN's steps
    attack_steps: int = 100          # the attack on each certificate: APGD steps,
    attack_samples: int = 32         # and the noise draws each of its gradients averages


@dataclass
class Result:
    certified: object                # certify.Result (with the attack)
    minimal: object                  # minimal.Result on the base model, L2
    options: Options = field(default_factory=Options)

    def to_dict(self) -> dict:
        c, m = self.certified, self.minimal.attack
        return {"model": c.model, "certify": c.to_dict(), "minimal_l2": [None if not np.isfinite(d) else float(d)
                                                                          for d in m.distance],
                "radius_above_base_minimal": int(np.sum(c.radius > m.distance)),
                "broken_certificates": int(c.violations.sum())}


def smoothed_path(subject) -> str | None:
    shipped = SAVED_MODELS / "cnn_smooth" / "model.keras"
    fits = subject.task.is_mnist and shipped.is_file()
    return str(shipped.parent) if fits else None


def run(subject, options: Options, progress=None) -> Result:
    path = options.smoothed or smoothed_path(subject)
    smooth = subject if path is None else Subject.load(path, subject.task)
    found = certify.run(smooth, certify.Options(sigma=options.sigma, n=options.n, count=options.count, attack=True,
                                                    attack_steps=options.attack_steps,
                                                    attack_samples=options.attack_samples))
    smallest = minimal.shared(smooth, minimal.Options(norm="l2", count=options.count, fab=options.minimal_fab,
                                                      steps=options.minimal_steps))
    return Result(found, smallest, options)


def figures(result: Result) -> dict:
    from kerascnn.plots import robustness as plots

    c, m = result.certified, result.minimal.attack
    out = certify.figures(c)
    title = (f"{c.model}: certified radius (smoothed, sigma {c.options.sigma:g}) and the smallest L2 change\nthat "
             f"fools the base model ({len(c.labels)} test images)")
    out["radius_vs_minimal.png"] = plots.radius_against_minimal(c.radius, m.distance, c.prediction == c.labels, title,
                                                                cap=c.radius_cap, n=c.options.n)
    return out


def table(result: Result):
    c, m = result.certified, result.minimal.attack
    right = c.prediction == c.labels
    rows = [[c.model, len(c.labels), f"{c.certified_accuracy(0.25):.1%}", f"{c.certified_accuracy(0.5):.1%}",
             f"{np.median(c.radius[right]) if right.any() else 0:.3g}", f"{m.median():.3g}",
             int(np.sum(c.radius > m.distance)), int(c.violations.sum())]]
    return Table(["model", "images", "certified 0.25", "certified 0.5", "median radius", "median minimal L2 (base)",
                  "radius > base minimal", "broken"], rows,
                 f"Randomized smoothing at sigma {c.options.sigma:g} (n {c.options.n:,}) beside "
                 f"{'FMN/FAB' if result.options.minimal_fab else 'FMN'} ({result.options.minimal_steps} steps) on the base "
                 f"model, the same images; each certificate attacked within its radius (L2 APGD on the soft smoothed "
                 f"classifier, {c.options.attack_steps} steps of {c.options.attack_samples} noise draws)",
                 numeric=tuple(range(1, 8)))


def summary(result: Result) -> str:
    c, m = result.certified, result.minimal.attack
    above = int(np.sum(c.radius > m.distance))
    return (certify.summary(c) + f" The base model is fooled by a median L2 change of {m.median():.3g}; for {above} "
            f"of {len(c.labels)} images the certified radius of the smoothed model is larger than that, which is "
            f"allowed: the smoothed classifier is not the base model, and the attack on it at each radius broke "
            f"{int(c.violations.sum())} certificates.")
