"""Transfer: adversarial noise made on one model, measured on another (Papernot et al. 2016; the
black-box threat: an attacker who has a similar model but not yours).

For every source model: untargeted PGD examples of the first `count` test images at `eps` (every
image takes every step: examples pushed past the boundary transfer better than the first point
that fools the source, where the robustness curve's PGD stops), and a
universal noise towards `target` fitted on `fit` training images at the same budget. Each is then
measured on every evaluated model, over the images the SOURCE model classifies right (an image the
source already gets wrong has nothing to transfer): the evaluated model's accuracy on their PGD
examples, and the fraction of them (not already predicted as the target by the evaluated model) that
the universal noise turns into the target. The diagonal is the white-box attack. The examples and
noises are saved (`arrays`), so that anyone can re-predict them.

Like `compare`, this studies several models at once: `run(sources, evals, options)` takes lists of
Subjects (of one task) instead of one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn import attacks
from kerascnn.attacks.fgm import check_eps, check_norm
from kerascnn.attacks.loop import check_settings
from kerascnn.attacks.projected_gradient import pgd
from kerascnn.attacks.universal_perturbation import fit_universal
from kerascnn.data.tasks import to_float
from kerascnn.errors import BadValue
from kerascnn.experiments.common import class_name, model_label
from kerascnn.outputs.document import Table


@dataclass
class Options:
    norm: str = "linf"
    eps: float = 0.2                 # the budget of both noises
    steps: int = 40                  # PGD steps (step eps * step_fraction, random start)
    step_fraction: float | None = None  # None: 2.5 / steps (Madry et al.), as kerascnn robustness
    count: int = 1000                # the first `count` test images
    target: int = 4                  # the universal noise's target (the last class when there are fewer)
    fit: int = 1000                  # training images the universal noise is fitted on
    seed: int = 0

    def check(self) -> None:

        check_norm(self.norm)
        check_eps(self.eps)
        check_settings(steps=self.steps)
        for name in ("count", "fit"):
            if getattr(self, name) < 1:
                raise BadValue(name, f"must be at least 1, got {getattr(self, name)}")


@dataclass
class Result:
    options: Options
    sources: list                    # model names, rows
    evals: list                      # model names, columns
    clean_accuracy: np.ndarray       # (E,) of each evaluated model on the images
    pgd_accuracy: np.ndarray         # (S, E) accuracy on PGD examples made on the source
    universal_turned: np.ndarray     # (S, E) fraction turned into the target by the source's universal noise
    target: int
    class_names: tuple | None = None
    examples: list | None = None     # per source: (N, H, W, C) its PGD examples of the first `count` test images
    noises: list | None = None       # per source: (H, W, C) its universal noise
    source_right: list | None = None  # per source: (N,) bool, the images it classifies right (the ones measured)
    labels: np.ndarray | None = None  # (N,) true classes of the test images

    @property
    def step_fraction(self) -> float:
        o = self.options
        return o.step_fraction or 2.5 / o.steps

    @property
    def target_name(self) -> str:
        return class_name(self.class_names, self.target)

    def to_dict(self) -> dict:
        o = self.options
        return {"sources": self.sources, "evals": self.evals, "norm": o.norm, "eps": o.eps, "count": o.count,
                "target": self.target, "target_name": self.target_name, "clean_accuracy": dict(zip(self.evals, self.clean_accuracy.tolist())),
                "pgd_accuracy": {s: dict(zip(self.evals, row)) for s, row in zip(self.sources, self.pgd_accuracy.tolist())},
                "universal_turned": {s: dict(zip(self.evals, row))
                                     for s, row in zip(self.sources, self.universal_turned.tolist())},
                "measured_on": {s: int(r.sum()) for s, r in zip(self.sources, self.source_right or [])},
                "definition": "over the images each source model classifies right: the evaluated model's accuracy "
                              "on their PGD examples; the fraction its universal noise turns into the target",
                "arrays": {f"source {i}": {"model": s, "examples": f"pgd_examples_{i}.npy",
                                           "noise": f"universal_noise_{i}.npy"} for i, s in enumerate(self.sources)},
                "settings": {"steps": o.steps, "step_fraction": self.step_fraction, "fit": o.fit, "seed": o.seed}}


def run(sources: list, evals: list, options: Options, progress=None) -> Result:

    options.check()
    if not sources or not evals:
        raise BadValue("models", "give at least one source and one evaluated model")
    task = sources[0].task
    target = min(options.target, task.num_classes - 1)
    images, labels = task.test()
    images, labels = images[:options.count], labels[:options.count]
    fit_images = to_float(task.arrays().x_train[:options.fit])
    clean = np.array([s.accuracy(images, labels) for s in evals])
    pgd_accuracy = np.zeros((len(sources), len(evals)))
    turned = np.zeros((len(sources), len(evals)))
    fraction = options.step_fraction or 2.5 / options.steps
    all_examples, noises, rights = [], [], []
    for i, source in enumerate(sources):
        if progress is not None:
            progress(f"transfer: attacking {source.name}")
        right = source.logits(images).argmax(axis=1) == labels
        examples = pgd(source.logits_model, images, labels, options.eps, norm=options.norm, steps=options.steps,
                       step_fraction=fraction, seed=options.seed, stop_when_fooled=False).images
        noise = fit_universal(source.logits_model, fit_images, target, eps=options.eps, norm=options.norm,
                              seed=options.seed).noise
        for j, evaluated in enumerate(evals):
            if right.any():
                pgd_accuracy[i, j] = evaluated.accuracy(examples[right], labels[right])
                turned[i, j] = attacks.universal(evaluated.logits_model, noise, images[right], labels[right],
                                                 target).fraction_turned or 0.0
        all_examples.append(examples)
        noises.append(noise)
        rights.append(right)
    return Result(options, [model_label(s) for s in sources], [model_label(s) for s in evals], clean, pgd_accuracy,
                  turned, target, task.class_names, all_examples, noises, rights, labels)


def arrays(result: Result) -> dict:
    """The PGD examples and universal noise of each source (numbered as in result.json), the labels,
    and which images each source classified right: enough to re-predict every number."""
    out = {"labels.npy": result.labels}
    for i in range(len(result.sources)):
        out[f"pgd_examples_{i}.npy"] = result.examples[i]
        out[f"universal_noise_{i}.npy"] = result.noises[i]
        out[f"source_right_{i}.npy"] = result.source_right[i]
    return out


def figures(result: Result) -> dict:
    from kerascnn.plots import robustness as plots

    o = result.options
    return {"transfer_pgd.png": plots.transfer_matrix(result.pgd_accuracy, result.sources, result.evals,
                                                      f"Accuracy on PGD-{o.steps} examples, {o.norm} eps {o.eps:g}"),
            "transfer_universal.png": plots.transfer_matrix(result.universal_turned, result.sources, result.evals,
                                                            f"Turned into {result.target_name} by universal noise, "
                                                            f"{o.norm} eps {o.eps:g}")}


def table(result: Result):

    o = result.options
    header = ["made on"] + [f"{e}: accuracy" for e in result.evals] + [f"{e}: turned" for e in result.evals]
    rows = [[s] + [f"{v:.1%}" for v in result.pgd_accuracy[i]] + [f"{v:.1%}" for v in result.universal_turned[i]]
            for i, s in enumerate(result.sources)]
    rows.append(["(clean)"] + [f"{v:.1%}" for v in result.clean_accuracy] + ["-"] * len(result.evals))
    return Table(header, rows, f"Transfer at {o.norm} eps {o.eps:g}, over those of the first {o.count} test images "
                               f"each row's model classifies right: accuracy on its PGD examples; fraction turned into "
                               f"{result.target_name} by its universal noise (diagonal: white-box)",
                 numeric=tuple(range(1, len(header))))


def summary(result: Result) -> str:
    off = [(result.sources[i], result.evals[j], result.pgd_accuracy[i, j])
           for i in range(len(result.sources)) for j in range(len(result.evals))
           if result.sources[i] != result.evals[j]]
    if not off:
        return "Only white-box pairs: give different source and evaluated models to measure transfer."
    worst = min(off, key=lambda t: t[2])
    return (f"PGD examples at {result.options.norm} eps {result.options.eps:g} transfer worst from {worst[0]} to "
            f"{worst[1]} (accuracy {worst[2]:.1%}); white-box: "
            + ", ".join(f"{s} {result.pgd_accuracy[i, result.evals.index(s)]:.1%}"
                        for i, s in enumerate(result.sources) if s in result.evals) + ".")
