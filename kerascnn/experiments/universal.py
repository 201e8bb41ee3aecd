"""Universal noise: one perturbation fitted on many training images to make the model predict a target
class (attacks.universal_perturbation), against the assignment's "universal" noise (the noise found
for one test image, added to the others), measured on the same held-out test images at the same
budget.

The budget: `eps` in `norm`; by default the norm of the one-image noise itself, so that the two are
compared at exactly what the assignment's noise spends. With an eps of its own, the one-image noise
is projected onto that ball too (it keeps its norm when it is already inside). Measured on the
first `count` test images (the source image left out): the fraction predicted as the target, the
fraction *turned* to it (of those not already predicted as the target), the fraction whose
prediction changed, per true class.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kerascnn import attacks
from kerascnn.attacks.fgm import check_eps, check_norm
from kerascnn.attacks.universal_perturbation import fit_universal
from kerascnn.data.tasks import to_float
from kerascnn.errors import BadValue
from kerascnn.experiments import noise as noise_exp
from kerascnn.experiments.common import attack_settings, class_name, model_label, resolve_class
from kerascnn.outputs.document import Table

#: The assignment's target.
ASSIGNMENT_TARGET = 4


@dataclass
class Options:
    target: str | int | None = None  # the class to push towards (None: 4, or the last class)
    norm: str = "linf"               # the budget's norm: "linf" or "l2"
    eps: float | None = None         # the budget (None: the one-image noise's own norm)
    fit: int = 1000                  # training images the universal noise is fitted on
    count: int = 1000                # held-out test images both noises are measured on
    epochs: int = 10                 # passes over the fitting images
    batch_size: int = 100
    lr: float = 0.2                  # the first step, as a fraction of eps (decays along a cosine)
    seed: int = 0
    noise_steps: int = noise_exp.Options.steps  # the one-image noise's steps (the noise command's)

    def check(self) -> None:

        check_norm(self.norm)
        if self.eps is not None:
            check_eps(self.eps)
        for name in ("fit", "count", "epochs", "batch_size", "noise_steps"):
            if getattr(self, name) < 1:
                raise BadValue(name, f"must be at least 1, got {getattr(self, name)}")


@dataclass
class Result:
    one: object            # attacks.UniversalResult of the one-image noise (projected onto the budget)
    fitted: object         # attacks.UniversalResult of the fitted universal noise
    fit: object            # attacks.universal_perturbation.UniversalFit
    one_noise: np.ndarray  # (H, W, C) the one-image noise as found (before any projection)
    source: str            # which test image the one-image noise was made for
    model: str
    class_names: tuple | None = None
    eps_model_units: float | list | None = None  # eps in the model's own input units (kerascnn.model.domain)
    noise_steps: int | None = None   # the one-image noise's step budget

    @property
    def eps(self) -> float:
        return self.fit.eps

    def to_dict(self) -> dict:
        return {"model": self.model, "target": self.fit.target,
                "target_name": class_name(self.class_names, self.fit.target), "norm": self.fit.norm, "eps": self.eps,
                "eps_model_units": self.eps_model_units,
                "one_image": self.one.to_dict() | {"source": self.source, "steps": self.noise_steps},
                "universal": self.fitted.to_dict() | {"fit": self.fit.settings, "fit_fraction": self.fit.fit_fraction,
                                                      "seconds": round(self.fit.seconds, 3)}}


def project(noise: np.ndarray, norm: str, eps: float) -> np.ndarray:
    """The noise projected onto the eps-ball of `norm` (unchanged when inside)."""
    if norm == "linf":
        return np.clip(noise, -eps, eps).astype(np.float32)
    length = float(np.sqrt(np.sum(np.square(noise, dtype=np.float64))))
    return (noise * min(1.0, eps / length) if length > 0 else noise).astype(np.float32)


def noise_norm(noise: np.ndarray, norm: str) -> float:
    return float(np.max(np.abs(noise))) if norm == "linf" else float(np.sqrt(np.sum(np.square(noise, dtype=np.float64))))


def run(subject, options: Options, progress=None) -> Result:

    options.check()
    task, model = subject.task, subject.logits_model
    target = resolve_class(task, options.target, ASSIGNMENT_TARGET, "target")
    source_class = next((c for c in task.classes_in_test() if c != target), None)
    if source_class is None:
        raise BadValue("target", f"leaves no other class with a test image to start from in {task.name}")
    index = task.first_of_class(source_class)
    images, labels = task.test()
    defaults = replace(noise_exp.Options(), steps=options.noise_steps)
    one = attacks.noise(model, images[index], target, confidence=defaults.confidence, beta=defaults.beta,
                        **attack_settings(defaults))
    one_noise = one.noise[0]
    eps = noise_norm(one_noise, options.norm) if options.eps is None else float(options.eps)
    if eps <= 0:
        raise BadValue("eps", "the one-image noise is zero (its image is already the target): give --eps")
    train_images = task.arrays().x_train[:options.fit]
    fit = fit_universal(model, to_float(train_images), target, eps=eps, norm=options.norm, epochs=options.epochs,
                        batch_size=options.batch_size, lr=options.lr, seed=options.seed, progress=progress)
    held_out = np.setdiff1d(np.arange(len(labels)), [index])[:options.count]
    measure = lambda noise: replace(attacks.universal(model, noise, images[held_out], labels[held_out], target,  # noqa: E731
                                                      indices=held_out), class_names=subject.class_names)
    return Result(measure(project(one_noise, options.norm, eps)), measure(fit.noise), fit, one_noise,
                  f"test image {index} (the first {task.label(source_class)})", model_label(subject),
                  subject.class_names, subject.eps_in_model_units(fit.eps), options.noise_steps)


def figures(result: Result) -> dict:
    from kerascnn.plots import robustness as plots

    entries = [("one image's noise", result.one.noise, result.one), ("universal (fitted)", result.fitted.noise,
                                                                      result.fitted)]
    return {"universal.png": plots.universal_comparison(entries, result.class_names)}


def arrays(result: Result) -> dict:
    return {"universal_noise.npy": result.fitted.noise, "one_image_noise.npy": result.one.noise}


def _row(name: str, u) -> list:
    turned = "-" if u.fraction_turned is None else f"{u.fraction_turned:.1%}"
    l2 = float(np.sqrt(np.sum(np.square(u.noise, dtype=np.float64))))
    return [name, f"{l2:.2f}", f"{np.max(np.abs(u.noise)):.3f}", f"{u.fooled.mean():.1%}", turned,
            f"{u.changed.mean():.1%}", f"{(u.noisy_predicted == u.labels).mean():.1%}"]


def table(result: Result):

    target = class_name(result.class_names, result.fit.target)
    rows = [_row("one image's noise", result.one), _row(f"universal, fitted on {result.fit.settings['fit_images']}",
                                                        result.fitted)]
    return Table(["noise", "L2", "Linf", f"predicted {target}", "turned", "changed", "accuracy"], rows,
                 f"Towards {target} at {result.fit.norm} budget {result.eps:.3g}, on {len(result.one.labels)} held-out "
                 f"test images (turned: of those not already predicted {target})", numeric=tuple(range(1, 7)))


def summary(result: Result) -> str:
    one, fitted = result.one, result.fitted
    target = class_name(result.class_names, result.fit.target)
    a, b = one.fraction_turned or 0.0, fitted.fraction_turned or 0.0
    ratio = f" ({b / a:.0f}x as many)" if a > 0 else ""
    return (f"At the same {result.fit.norm} budget ({result.eps:.3g}), the noise fitted on "
            f"{result.fit.settings['fit_images']} training images turns {b:.1%} of {len(fitted.labels)} held-out test "
            f"images into {target}{ratio}; the noise of {result.source} turns {a:.1%}. Predictions changed: "
            f"{fitted.changed.mean():.1%} against {one.changed.mean():.1%}.")
