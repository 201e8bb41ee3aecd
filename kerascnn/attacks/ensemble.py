"""AutoAttack (Croce & Hein, ICML 2020): an ensemble of complementary attacks, each run on the
images that are still classified right after the previous ones, as fra31/auto-attack runs it.

    standard  apgd-ce (100 iterations), apgd-t (9 targets x 100), fab-t (9 targets x 100),
              square (5,000 queries): the version RobustBench reports
    plus      apgd-ce and apgd-dlr with 5 restarts, fab with 5 restarts, square, apgd-t, fab-t
    rand      apgd-ce and apgd-dlr, each gradient averaged over 20 passes (EOT): for models with
              randomness at inference

Any subset of the components (`components=`) runs the same way, in the order given. An image is
counted as fooled by a component only when the model, re-predicting the returned image, gets it
wrong and the image lies in [0, 1] and inside its ball; the final accuracy is re-predicted once more
from the ensemble's images. `correct_per_restart` of the result holds, row by row, which images are
still right after each component (the reference's running robust accuracy).
"""
from __future__ import annotations

import time

import numpy as np

from kerascnn.attacks.bounded_results import bounded_result
from kerascnn.attacks.fgm import _labels, check_norm, per_image_eps
from kerascnn.attacks.loop import Progress, as_batch, model_shape
from kerascnn.errors import BadValue
from kerascnn.model.predict import predict_logits

COMPONENTS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
VERSIONS = {"standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
            "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
            "rand": ("apgd-ce", "apgd-dlr")}
#: The reference's budgets per version: restarts, targets, EOT passes; iterations 100, queries 5,000.
BUDGETS = {
    "standard": {"apgd-ce": {"restarts": 1}, "apgd-t": {"restarts": 1, "target_classes": 9},
                 "fab-t": {"restarts": 1, "target_classes": 9}, "apgd-dlr": {"restarts": 1}, "fab": {"restarts": 1}},
    "plus": {"apgd-ce": {"restarts": 5}, "apgd-dlr": {"restarts": 5}, "fab": {"restarts": 5},
             "apgd-t": {"restarts": 1, "target_classes": 9}, "fab-t": {"restarts": 1, "target_classes": 9}},
    "rand": {"apgd-ce": {"restarts": 1, "eot": 20}, "apgd-dlr": {"restarts": 1, "eot": 20},
             "apgd-t": {"restarts": 1, "target_classes": 9, "eot": 20}},
}
STEPS, QUERIES = 100, 5000
#: The gradient-free component: accuracy it removes after the gradient ones is the mark of masking.
GRADIENT_FREE = ("square",)


def check_components(names) -> tuple[str, ...]:
    """Component names (a list or 'a,b') -> a tuple in the order given, each known."""
    if isinstance(names, str):
        from kerascnn.lists import split_list

        names = [n.lower() for n in split_list(names, "components")]
    names = tuple(dict.fromkeys(names))
    bad = [n for n in names if n not in COMPONENTS]
    if not names or bad:
        raise BadValue("components", f"choose from {', '.join(COMPONENTS)}, got {', '.join(names) or 'none'}")
    return names


def check_version(version: str) -> str:
    if version not in VERSIONS:
        raise BadValue("version", f"must be one of {', '.join(VERSIONS)}, got {version!r}")
    return version


def run_component(name: str, model, images, labels, eps, *, norm: str, version: str = "standard",
                  steps: int = STEPS, queries: int = QUERIES, seed: int = 0, batch_size: int | None = None,
                  progress: Progress | None = None):
    """One component on a batch -> (its result, (N,) bool: fooled inside the ball, as re-predicted)."""
    budget = dict(BUDGETS[version].get(name, {}))
    if name.startswith("apgd"):
        from kerascnn.attacks.auto_pgd import apgd

        loss = {"apgd-ce": "ce", "apgd-dlr": "dlr", "apgd-t": "dlr-t"}[name]
        result = apgd(model, images, labels, eps, norm=norm, loss=loss, steps=steps, seed=seed,
                      batch_size=batch_size, progress=progress, **budget)
        return result, result.success & result.within_ball()
    if name.startswith("fab"):
        from kerascnn.attacks.boundary import fab

        result = fab(model, images, labels, eps, norm=norm, targeted=name == "fab-t", steps=steps, seed=seed,
                     batch_size=batch_size, progress=progress, **budget)
        inside = np.all((result.images >= 0) & (result.images <= 1), axis=tuple(range(1, result.images.ndim)))
        radii = np.asarray(eps, np.float64) * (1 + 1e-5) + 1e-5
        return result, result.success & inside & (result.distance <= radii)
    from kerascnn.attacks.square_search import square

    result = square(model, images, labels, eps, norm=norm, queries=queries, seed=seed, batch_size=batch_size,
                    progress=progress)
    return result, result.success & result.within_ball()


def autoattack(model, images: np.ndarray, labels, eps, *, norm: str = "linf", version: str = "standard",
               components=None, steps: int = STEPS, queries: int = QUERIES, seed: int = 0,
               batch_size: int | None = None, progress: Progress | None = None,
               on_component=None):
    """AutoAttack on a batch: attacks.BoundedResult ("autoattack") of images within eps of `images`.

    images (N, H, W, C) in [0, 1]; labels (N,) true classes; eps one radius or one per image (all
    the eps of a curve in one call); components: None (the version's) or a subset, run in order.
    progress(percent, images fooled, N) as the components go; on_component(name, still right (N,))
    after each one.
    """
    shape, num_classes = model_shape(model)
    check_norm(norm)
    check_version(version)
    names = VERSIONS[version] if components is None else check_components(components)
    originals = as_batch(images, shape, "images")
    labels = _labels(labels, len(originals), num_classes)
    radii = per_image_eps(eps, len(originals))
    begin = time.perf_counter()
    right = predict_logits(model, originals).argmax(axis=1) == labels
    adversarial, record, seconds, added = originals.copy(), [], {}, {}
    for i, name in enumerate(names):
        todo = np.flatnonzero(right)
        started = time.perf_counter()
        if len(todo):
            part = None if progress is None else _part(progress, i, len(names), right, len(originals))
            result, fooled = run_component(name, model, originals[todo], labels[todo], radii[todo], norm=norm,
                                           version=version, steps=steps, queries=queries, seed=seed,
                                           batch_size=batch_size, progress=part)
            adversarial[todo[fooled]] = result.images[fooled]
            right[todo[fooled]] = False
            added[name] = int(fooled.sum())
        seconds[name] = round(time.perf_counter() - started, 3)
        record.append(right.copy())
        if progress is not None:
            progress(100 * (i + 1) // len(names), int((~right).sum()), len(originals))
        if on_component is not None:
            on_component(name, right.copy())
    settings = {"norm": norm, "version": version if components is None else "custom", "components": list(names),
                "steps": steps, "queries": queries, "seed": seed, "seconds": seconds, "fooled_by": added,
                "budgets": {n: BUDGETS[version].get(n, {}) for n in names}}
    return bounded_result(model, "autoattack", norm, radii, originals, adversarial, labels, False, np.array(record),
                          time.perf_counter() - begin, settings)


def _part(progress, index: int, count: int, right: np.ndarray, total: int):
    """A component's progress(units, fooled, ...) as the ensemble's: the percent where the component
    started, the images fooled so far (before it, and by it)."""
    already = int((~right).sum())
    return lambda done, fooled, size: progress(100 * index // count, already + int(fooled), total)
