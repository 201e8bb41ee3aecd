"""Minimal perturbations: for each of the first `count` test images, the smallest change (in L2 or
L-infinity) that changes the model's prediction, or makes it predict a target, found by FMN
(attacks.minimal), and without a target also by FAB (attacks.fab, targeted at the 9 most likely
other classes, as AutoAttack runs it), keeping per image the smaller of the two. The median of these
norms is one number per model: how far, typically, its decisions are from its test images.

Images the model already gets wrong count with norm 0 (untargeted; nothing needs changing);
images for which no perturbation was found count as infinitely far (they raise the median).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.attacks.bounded_results import minimal_result
from kerascnn.attacks.boundary import fab
from kerascnn.attacks.fgm import check_norm
from kerascnn.attacks.loop import check_settings
from kerascnn.attacks.minimal_norm import minimal
from kerascnn.errors import BadValue
from kerascnn.experiments.common import class_name, model_label
from kerascnn.outputs.document import Table


@dataclass
class Options:
    norm: str = "l2"                 # the norm minimised: "l2" or "linf"
    target: str | int | None = None  # a class to reach (None: any other than the true class)
    count: int = 100                 # the first `count` test images (those of the target class are skipped)
    steps: int = 300                 # FMN steps (more change the median by < 1% on MNIST)
    fab: bool = True                 # without a target, also run FAB-T and keep the smaller, per image

    def check(self) -> None:

        check_norm(self.norm)
        check_settings(steps=self.steps)
        if self.count < 1:
            raise BadValue("count", f"must be at least 1, got {self.count}")


@dataclass
class Result:
    attack: object                   # attacks.MinimalResult
    indices: np.ndarray              # (N,) the test images used
    true_labels: np.ndarray          # (N,) their true classes
    model: str
    class_names: tuple | None = None

    @property
    def clean_correct(self) -> np.ndarray:
        return self.attack.clean_probabilities.argmax(axis=1) == self.true_labels

    def to_dict(self) -> dict:
        r = self.attack
        target = None if r.target is None else class_name(self.class_names, r.target)
        return {"model": self.model, "indices": self.indices.tolist(), "target_name": target,
                "clean_accuracy": float(self.clean_correct.mean()),
                "median_of_correct": _median(r.distance[self.clean_correct])} | r.to_dict()


def _median(values: np.ndarray) -> float | None:
    if not values.size:
        return None
    m = float(np.median(values))
    return m if np.isfinite(m) else None


def run(subject, options: Options, progress=None) -> Result:

    options.check()
    task = subject.task
    target = None if options.target is None else task.class_index(options.target, "target")
    images, labels = task.test()
    indices = np.arange(len(labels)) if target is None else np.flatnonzero(labels != target)
    indices = indices[:options.count]
    result = minimal(subject.logits_model, images[indices], labels[indices], norm=options.norm, target=target,
                     steps=options.steps, progress=progress)
    if options.fab and target is None:
        result = smaller_of(subject.logits_model, result, fab(subject.logits_model, images[indices], labels[indices],
                                                              norm=options.norm))
    return Result(result, indices, labels[indices], model_label(subject), subject.class_names)


def shared(subject, options: Options) -> Result:
    """run(subject, options) once per subject (kept in Subject.memo): on a dataset other than MNIST the
    report's robustness and certified sections both ask for the smallest L2 changes of the same first
    test images with the same options (the certified section smooths the subject itself there). The
    attacks are seeded, so a second run would give the same Result; callers only read it."""
    options.check()
    return subject.memo.get(("minimal", repr(options)), lambda: run(subject, options))


def smaller_of(model, fmn, other):
    """Per image, the smaller successful perturbation of two MinimalResults (FMN's where they tie);
    the choice is recorded in settings["found_by"] and the result re-predicted."""
    take = other.distance < fmn.distance
    images = np.where(take[:, None, None, None], other.images, fmn.images)
    settings = dict(fmn.settings) | {"found_by": np.where(take, "fab", "fmn").tolist(),
                                     "fab": other.settings, "fab_smaller": int(take.sum())}
    return minimal_result(model, fmn.norm, fmn.originals, images, fmn.labels, None, None,
                          fmn.seconds + other.seconds, settings)


def figures(result: Result) -> dict:
    from kerascnn.plots import robustness as plots

    r = result.attack
    goal = "change the prediction" if r.target is None else f"make it {class_name(result.class_names, r.target)}"
    out = {"norms.png": plots.norm_histogram({result.model: r.distance}, r.norm,
                                             f"Smallest {r.norm} perturbation that will {goal} "
                                             f"({len(r.labels)} test images)")}
    shown = min(8, len(r.labels))
    out["examples.png"] = plots.adversarial_examples(r.originals[:shown], [(f"minimal {r.norm}", r.images[:shown],
                                                                            r.predicted[:shown])],
                                                     result.true_labels[:shown], result.class_names)
    return out


def arrays(result: Result) -> dict:
    r = result.attack
    return {"images.npy": r.images, "originals.npy": r.originals}


def table(result: Result):

    r, names = result.attack, result.class_names
    d = r.distance
    quantiles = [f"{q:.3g}" if np.isfinite(q) else "inf" for q in np.quantile(d, [0.1, 0.25, 0.5, 0.75, 0.9])]
    rows = [[result.model, len(d), int(r.success.sum()), *quantiles]]
    goal = "any other class" if r.target is None else class_name(names, r.target)
    return Table(["model", "images", "found", "10%", "25%", "median", "75%", "90%"], rows,
                 f"Smallest {r.norm} perturbation reaching {goal} (FMN, {r.settings['steps']} steps, then a "
                 f"bisection to the boundary" + (f"; FAB-T smaller for {r.settings['fab_smaller']}" if "fab" in r.settings
                                                  else "") + "; 0: already there, inf: not found)",
                 numeric=tuple(range(1, 8)))


def summary(result: Result) -> str:
    r = result.attack
    goal = "changes its prediction" if r.target is None else f"makes it {class_name(result.class_names, r.target)}"
    missing = len(r.labels) - int(r.success.sum())
    right = _median(r.distance[result.clean_correct])
    right_text = "none" if right is None else f"{right:.3g}"
    head = (f"{result.model}: for half of the first {len(r.labels)} test images a perturbation of {r.norm} norm "
            f"{r.median():.3g} or less {goal}" if np.isfinite(r.median()) else
            f"{result.model}: for most of the first {len(r.labels)} test images no perturbation {goal} was found "
            f"(the median is beyond what the attack reached)")
    return (head + f" ({result.clean_correct.mean():.0%} of them are classified right to begin with; their median: "
            f"{right_text})" + (f"; for {missing} none was found." if missing else "; one was found for every image."))
