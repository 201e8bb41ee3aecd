"""Certified robustness by randomized smoothing (Cohen, Rosenfeld & Kolter 2019) on the first
`count` test images: for each, the smoothed classifier's class and the L2 radius within which no
perturbation can change it (with probability 1 - alpha over the sampling), or an abstention;
certified accuracy against the radius. `predict=True` runs PREDICT instead: the class or an
abstention, no radius.

An image counts as certified at radius r when the smoothed classifier predicts its true class with
a radius of at least r. Sigma is in pixel units ([0, 1]); a model trained without noise
(`kerascnn train --noise-sd`) abstains almost everywhere at sigma 0.25.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from kerascnn.smoothing.cohen import ABSTAIN, certify, check, largest_radius, predict
from kerascnn.errors import BadValue
from kerascnn.experiments.common import model_label
from kerascnn.outputs.document import Table

#: The radii the table and the summary report (the figure draws the whole curve).
RADII = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


@dataclass
class Options:
    sigma: float = 0.25              # the noise's deviation, in pixel units
    n0: int = 100                    # samples that choose the class
    n: int = 10_000                  # samples that bound its probability
    alpha: float = 0.001             # the certificate fails with probability at most alpha
    count: int = 500                 # the first `count` test images
    predict: bool = False            # PREDICT (class or abstain) instead of CERTIFY
    attack: bool = False             # attack each certified image at its own radius (L2 APGD on the soft smoothed
                                     # classifier, SmoothAdv) and ask the smoothed classifier again
    seed: int = 0
    batch_size: int | None = None    # noisy copies per model call (None: as many as fit)
    precision: str = "fp32"          # "bf16": the model's bfloat16 copy classifies the noisy images (faster
                                     # where the CPU has AVX512_BF16; the certificate is then that copy's)
    attack_steps: int = 100          # the attack's APGD steps
    attack_samples: int = 32         # noise draws averaged in each of its gradients (steps x samples gradients an
                                     # image: 3,200, a minute an image for a MobileNetV2 at 224 px on two cores)

    def check(self) -> None:
        check(self.sigma, None if self.predict else self.n0, self.n, self.alpha, self.precision)
        if self.count < 1:
            raise BadValue("count", f"must be at least 1, got {self.count}")
        for name in ("attack_steps", "attack_samples"):
            if getattr(self, name) < 1:
                raise BadValue(name, f"must be at least 1, got {getattr(self, name)}")


@dataclass
class Result:
    options: Options
    model: str
    labels: np.ndarray               # (N,) true classes
    prediction: np.ndarray           # (N,) the smoothed classifier's class, ABSTAIN (-1) where it abstains
    radius: np.ndarray | None        # (N,) certified L2 radius (0 where abstaining); None with predict
    p_lower: np.ndarray | None       # (N,) the lower bound on the top class's probability
    seconds: float
    class_names: tuple | None = None
    attacked: np.ndarray | None = None   # (N,) the smoothed class of the attacked image (ABSTAIN; -2: not attacked)
    attack_distance: np.ndarray | None = None  # (N,) the L2 length of the attack's change

    @property
    def violations(self) -> np.ndarray:
        """(N,) bool: certified, yet the smoothed classifier changed its class (not an abstention) on an
        image no farther than the certified radius: a broken certificate (allowed with probability alpha)."""
        if self.attacked is None:
            return np.zeros(len(self.labels), bool)
        changed = (self.attacked >= 0) & (self.attacked != self.prediction)
        return changed & (self.prediction != ABSTAIN) & (self.attack_distance <= self.radius + 1e-6)

    @property
    def abstained(self) -> float:
        return float(np.mean(self.prediction == ABSTAIN))

    @property
    def accuracy(self) -> float:
        """The smoothed classifier's accuracy (abstentions count as wrong)."""
        return float(np.mean(self.prediction == self.labels))

    def certified_accuracy(self, radius: float) -> float:
        if self.radius is None:
            raise ValueError("PREDICT gives no radius")
        return float(np.mean((self.prediction == self.labels) & (self.radius >= radius)))

    @property
    def radius_cap(self) -> float:
        """The largest radius n samples can certify (all of them agreeing): radii at it are bounded by n."""
        o = self.options
        return largest_radius(o.sigma, o.n, o.alpha)

    @property
    def samples_per_second(self) -> float:
        o = self.options
        per_image = o.n if o.predict else o.n0 + o.n
        return round(len(self.labels) * per_image / self.seconds, 1) if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        o = self.options
        out = {"model": self.model, "mode": "predict" if o.predict else "certify", "sigma": o.sigma, "n0": o.n0,
               "n": o.n, "alpha": o.alpha, "count": len(self.labels), "seed": o.seed, "precision": o.precision,
               "accuracy": self.accuracy, "abstained": self.abstained, "labels": self.labels.tolist(),
               "prediction": self.prediction.tolist(), "seconds": round(self.seconds, 3),
               "samples_per_second": self.samples_per_second}
        if self.radius is not None:
            out |= {"radius": [round(float(r), 6) for r in self.radius],
                    "p_lower": [round(float(p), 6) for p in self.p_lower],
                    "certified_accuracy": {f"{r:g}": self.certified_accuracy(r) for r in RADII}}
        if self.attacked is not None:
            out |= {"attack": {"method": f"L2 APGD-CE ({o.attack_steps} steps, highest-loss point) at each certified "
                                         f"radius on the soft smoothed classifier (softmax averaged over "
                                         f"{o.attack_samples} noise draws; SmoothAdv)",
                               "steps": o.attack_steps, "samples": o.attack_samples,
                               "smoothed_after": self.attacked.tolist(),
                               "distance": [round(float(d), 6) for d in self.attack_distance],
                               "violations": int(self.violations.sum())}}
        return out


def run(subject, options: Options, progress=None) -> Result:
    options.check()
    subject.task.check_count(options.count)
    images, labels = subject.task.test()
    images, labels = images[:options.count], labels[:options.count]
    begin = time.perf_counter()
    if options.predict:
        prediction = predict(subject.logits_model, images, options.sigma, n=options.n, alpha=options.alpha,
                             seed=options.seed, batch_size=options.batch_size, precision=options.precision)
        radius = p_lower = None
    else:
        found = certify(subject.logits_model, images, options.sigma, n0=options.n0, n=options.n,
                        alpha=options.alpha, seed=options.seed, batch_size=options.batch_size,
                        precision=options.precision, progress=progress)
        prediction, radius, p_lower = found["prediction"], found["radius"], found["p_lower"]
    seconds = time.perf_counter() - begin
    attacked = distance = None
    if options.attack and radius is not None:
        attacked, distance = attack_at_radius(subject.logits_model, images, prediction, radius, options)
    return Result(options, model_label(subject), labels, prediction, radius, p_lower, seconds, subject.class_names,
                  attacked, distance)


def attack_at_radius(model, images, prediction, radius, options: Options):
    """Each certified image attacked within its own radius, then the smoothed classifier asked again
    (PREDICT): (its class per image, -2 where not attacked; the L2 length of each change). The attack:
    L2 APGD-CE on the soft smoothed classifier (softmax averaged over `options.attack_samples` noise
    draws: SmoothAdv, Salman et al. 2019), all its `options.attack_steps` steps, keeping the highest-loss
    point."""
    from kerascnn.attacks.auto_pgd import apgd
    from kerascnn.smoothing.cohen import soft_smoothed
    from kerascnn.model.batching import batch_size as fitting

    attacked = np.full(len(images), -2, np.int64)
    distance = np.zeros(len(images))
    todo = np.flatnonzero((prediction != ABSTAIN) & (radius > 0))
    if len(todo):
        samples = options.attack_samples
        batch = max(1, (options.batch_size or fitting(model, gradients=True)) // samples)
        found = apgd(soft_smoothed(model, options.sigma, samples), images[todo], prediction[todo], radius[todo],
                     norm="l2", steps=options.attack_steps, seed=options.seed, batch_size=batch, best_loss=True)
        attacked[todo] = predict(model, found.images, options.sigma, n=options.n, alpha=options.alpha,
                                 seed=options.seed + 1, batch_size=options.batch_size, precision=options.precision)
        distance[todo] = np.sqrt(np.sum(np.square(found.images - images[todo]).reshape(len(todo), -1), axis=1))
    return attacked, distance


def figures(result: Result) -> dict:
    if result.radius is None:
        return {}
    from kerascnn.plots import robustness as plots

    o = result.options
    return {"certify.png": plots.certified_curve(
        result.radius, result.prediction == result.labels, result.abstained,
        f"{result.model}: certified accuracy, sigma {o.sigma:g}, n {o.n:,}, alpha {o.alpha:g} "
        f"({len(result.labels)} test images)", cap=result.radius_cap, n=o.n)}


def table(result: Result):
    o = result.options
    if result.radius is None:
        return Table(["images", "smoothed accuracy", "abstained"],
                     [[len(result.labels), f"{result.accuracy:.1%}", f"{result.abstained:.1%}"]],
                     f"{result.model}: PREDICT with sigma {o.sigma:g}, n {o.n:,}, alpha {o.alpha:g}", numeric=(0, 1, 2))
    rows = [[f"{r:g}", f"{result.certified_accuracy(r):.1%}"] for r in RADII]
    return Table(["L2 radius", "certified accuracy"], rows,
                 f"{result.model}: randomized smoothing (Cohen et al.), sigma {o.sigma:g}, n0 {o.n0}, n {o.n:,}, "
                 f"alpha {o.alpha:g}, first {len(result.labels)} test images; abstained {result.abstained:.1%}"
                 + ("; sampled by the model's bfloat16 copy" if o.precision == "bf16" else ""),
                 numeric=(0, 1))


def summary(result: Result) -> str:
    o = result.options
    if result.radius is None:
        return (f"{result.model} smoothed at sigma {o.sigma:g}: {result.accuracy:.1%} of the first "
                f"{len(result.labels)} test images right, {result.abstained:.1%} abstained (PREDICT, n {o.n:,}).")
    return (f"{result.model} smoothed at sigma {o.sigma:g}: certified accuracy {result.certified_accuracy(0.5):.1%} "
            f"at L2 radius 0.5 and {result.certified_accuracy(1.0):.1%} at 1.0 on the first {len(result.labels)} "
            f"test images ({result.abstained:.1%} abstained; n {o.n:,}, alpha {o.alpha:g}; "
            f"{result.samples_per_second:,.0f} noisy samples/s)." + _cap_summary(result) + _attack_summary(result))


def _cap_summary(result: Result) -> str:
    """What n bounds: no radius above the cap (all n samples agreeing) can be certified."""
    cap = result.radius_cap
    at_cap = int(np.sum(np.isclose(result.radius, cap, rtol=1e-6) & (result.radius > 0)))
    return (f" With n {result.options.n:,} no radius above {cap:.3g} can be certified (all samples agreeing): "
            f"{at_cap} of {len(result.labels)} images sit at that cap, a limit of the setting, not of the model."
            if at_cap else "")


def _attack_summary(result: Result) -> str:
    if result.attacked is None:
        return ""
    tried = int(np.sum(result.attacked != -2))
    moved = int(np.sum((result.attacked >= 0) & (result.attacked != result.prediction)))
    o = result.options
    return (f" Attacked at its own radius (L2 APGD on the soft smoothed classifier, {o.attack_steps} steps of "
            f"{o.attack_samples} noise draws), the smoothed classifier changed its class on "
            f"{moved} of {tried} certified images: {int(result.violations.sum())} broken certificates.")
