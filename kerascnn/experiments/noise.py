"""Noise attack: additive noise, from zero, that makes the model predict a target class for real
images; then the assignment's "universal" check: the first source's noise added to other test images.

Two ways to find the noise: the assignment's gradient steps (`optimizer` sign or adam, stopping at
the goal), or with `norm` "l2" / "linf" the smallest noise in that norm that reaches the same goal
(P(target) >= confidence), found by the minimum-norm attack FMN (attacks.minimal): on the pretrained
MNIST model 28-36% less L2 (l2) or 14-23% less L-infinity (linf) than the sign steps.

Sources: the first test image of each class other than the target (default), the first `count` of
one class, `count` test images from an index on, or a picture file.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn import attacks
from kerascnn.attacks.minimal_norm import minimal
from kerascnn.attacks.results import NoiseResult
from kerascnn.errors import BadValue
from kerascnn.experiments.common import attack_settings, class_name, resolve_class
from kerascnn.outputs.document import Table

#: The assignment's target (make the digits a 4) and number of sources (the first of six other digits).
ASSIGNMENT_TARGET = 4
ASSIGNMENT_COUNT = 6


@dataclass
class Options:
    target: str | int | None = None   # the class to make the model predict (None: 4, or the last class)
    source_class: str | int | None = None  # sources: the first `count` test images of this class
    index: int | None = None          # or `count` test images from number I on
    image: str | None = None          # or one picture file
    count: int | None = None          # source images (None: 6, at most one per other class by default)
    steps: int = 500
    lr: float = 0.005
    optimizer: str = "sign"           # sign steps reach the goal with less noise than Adam here
    confidence: float = 0.99          # each source stops at this probability of the target
    beta: float = 0.0                 # penalty on the mean squared noise (0: stopping early keeps it small)
    universal: int = 100              # add the first source's noise to N random test images (0: skip)
    seed: int = 0                     # seeds the choice of those test images
    clip: bool = True
    norm: str | None = None           # None: the steps above; "l2"/"linf": the smallest noise in that norm (FMN)

    def check(self) -> None:
        if self.count is not None and self.count < 1:
            raise BadValue("count", f"must be at least 1, got {self.count}")
        if self.universal < 0:
            raise BadValue("universal", f"must be 0 or more, got {self.universal}")
        if sum(v is not None for v in (self.source_class, self.index, self.image)) > 1:
            raise BadValue("sources", "choose at most one of a class, a test index or an image file")
        if self.norm is not None and self.norm not in ("l2", "linf"):
            raise BadValue("norm", f"must be l2 or linf, got {self.norm!r}")


@dataclass
class Result:
    attack: object                    # attacks.NoiseResult
    sources: str                      # what the sources are, in words
    indices: np.ndarray | None        # their test indices (None for a picture)
    universal: object | None = None   # attacks.UniversalResult

    def to_dict(self) -> dict:
        names = self.attack.class_names
        out = self.attack.to_dict() | {"sources": self.sources, "target_name": class_name(names, self.attack.target),
                                       "source_indices": None if self.indices is None else self.indices.tolist()}
        if self.universal is not None:
            out["universal"] = self.universal.to_dict()
        return out


def _sources(task, options: Options, target: int):
    """(images (N, H, W, C), labels (N,) with -1 unknown, test indices or None, description)."""
    if isinstance(options.image, np.ndarray):  # the Python API's image=: (H, W, C) in [0, 1]
        from kerascnn.data.tasks import Pick, pick

        return pick(task, Pick(image=options.image)).image[None], np.array([-1]), None, "the given image"
    if options.image is not None:
        return task.picture(options.image)[None], np.array([-1]), None, str(options.image)
    images, labels = task.test()
    present = task.classes_in_test()
    others = [c for c in present if c != target]  # the default sources: a first test image of each
    count = options.count if options.count is not None else min(ASSIGNMENT_COUNT, max(len(others), 1))
    if options.source_class is not None:
        k = task.class_index(options.source_class, "source_class")
        task.first_of_class(k)
        found = np.flatnonzero(labels == k)[:count]
        what = f"the first {len(found)} test image(s) of class {task.label(k)}"
    elif options.index is not None:
        start = task.check_index(options.index)
        found = np.arange(start, min(start + count, len(labels)))
        what = f"test images {found[0]}..{found[-1]}"
    else:
        if count > len(others):
            raise BadValue("count", f"is at most {len(others)} without a source class or index (the classes other "
                                    f"than the target with a test image), got {count}")
        found = np.array([task.first_of_class(c) for c in others[:count]], np.int64)
        what = f"the first test image of each of {', '.join(task.label(c) for c in others[:count])}"
    return images[found], labels[found], found, what


def run(subject, options: Options, progress=None) -> Result:
    from dataclasses import replace


    options.check()
    task = subject.task
    target = resolve_class(task, options.target, ASSIGNMENT_TARGET, "target")
    sources, labels, indices, what = _sources(task, options, target)
    if options.norm is None:
        result = attacks.noise(subject.logits_model, sources, target, confidence=options.confidence,
                               beta=options.beta, labels=labels, progress=progress, **attack_settings(options))
    else:
        result = smallest_noise(subject.logits_model, sources, target, labels, options, progress)
    result = replace(result, class_names=subject.class_names)
    spread = None
    if options.universal:
        images, test_labels = task.test()
        pool = np.setdiff1d(np.arange(len(test_labels)), [] if indices is None else indices[:1])
        chosen = np.random.default_rng(options.seed).choice(pool, size=min(options.universal, len(pool)), replace=False)
        spread = attacks.universal(subject.logits_model, result.noise[0], images[chosen], test_labels[chosen], target,
                                   clip=options.clip, indices=chosen)
        spread = replace(spread, class_names=subject.class_names)
    return Result(result, what, indices, spread)


def smallest_noise(model, sources, target: int, labels, options: Options, progress=None):
    """attacks.NoiseResult of the smallest noise in `options.norm` reaching P(target) >= confidence (FMN)."""

    found = minimal(model, sources, target=target, confidence=options.confidence, norm=options.norm,
                    steps=options.steps, progress=progress)
    settings = found.settings | {"clip": True}
    return NoiseResult(target, found.originals, found.images, found.images - found.originals, np.asarray(labels, np.int64),
                       found.clean_probabilities, found.probabilities, np.full(len(sources), options.steps, np.int64),
                       options.steps, found.seconds, options.confidence, settings)


def figures(result: Result) -> dict:
    from kerascnn import plots

    out = {"noise.png": plots.noise_rows(result.attack)}
    if result.universal is not None:
        out["universal.png"] = plots.universal_pairs(result.universal)
    return out


def arrays(result: Result) -> dict:
    r = result.attack
    return {"images.npy": r.images, "originals.npy": r.originals, "noise.npy": r.noise}


def table(result: Result):

    r, names = result.attack, result.attack.class_names
    rows, marked = [], []
    for i in range(len(r.originals)):
        source = "file" if result.indices is None else int(result.indices[i])
        label = "-" if r.labels[i] < 0 else class_name(names, r.labels[i])
        rows.append([source, label, f"{class_name(names, r.original_predicted[i])} ({r.original_probabilities[i].max():.2f})",
                     f"{class_name(names, r.predicted[i])} ({r.probabilities[i].max():.2f})", f"{r.l2[i]:.2f}",
                     f"{r.linf[i]:.3f}", int(r.steps_used[i]), "yes" if r.success[i] else "NO"])
        marked += [] if r.success[i] else [(i, 7)]
    return Table(["source", "label", "before", "after", "L2", "Linf", "steps", "success"], rows,
                 f"Noise towards {class_name(names, r.target)} on {result.sources} (done at P >= {r.confidence:g})",
                 numeric=(0, 4, 5, 6), marked=tuple(marked))


def universal_summary(u, names) -> str:
    turned = "-" if u.fraction_turned is None else f"{u.fraction_turned:.0%}"
    target = class_name(names, u.target)
    return (f"The first source's noise (L2 {np.sqrt(np.sum(np.square(u.noise, dtype=np.float64))):.2f}) added to "
            f"{len(u.labels)} random test images: {turned} of those not already predicted {target} are turned "
            f"into {target} ({u.fooled.mean():.0%} predicted {target} in all), {u.changed.mean():.0%} change their "
            f"prediction (accuracy {(u.clean_predicted == u.labels).mean():.0%} -> "
            f"{(u.noisy_predicted == u.labels).mean():.0%}).")


def summary(result: Result) -> str:
    r = result.attack
    target = class_name(r.class_names, r.target)
    text = (f"Noise that makes {result.sources} predicted {target}: {int(r.success.sum())}/{len(r.originals)} reach "
            f"P >= {r.confidence:g}, median L2 {np.median(r.l2):.2f}, no pixel changed by more than {r.linf.max():.3f}.")
    if result.universal is not None:
        text += " " + universal_summary(result.universal, r.class_names)
    return text
