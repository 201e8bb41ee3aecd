"""Robustness: accuracy under eps-bounded attacks (FGSM, PGD) at several eps, on the first `count`
test images, untargeted, as the field measures it (Madry et al.: PGD from a random start, step
eps / 30, 40 steps).

An image counts as correct at eps when the model is right on it clean and on the attacked copy
(the attacks are run on every image; accuracy is re-predicted from the returned arrays). All the
eps of one attack go through the model as one batch of count x eps images.

The result carries the checks that make gradient masking visible (Carlini et al. 2019, "On
evaluating adversarial robustness"): PGD is never above FGSM at the same eps, accuracy never rises
with eps, more restarts never raise it, and at a huge eps (linf 1, or an L2 that spans the image)
the accuracy reaches 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from kerascnn.attacks.fgm import check_epsilons, check_norm, fgm
from kerascnn.attacks.loop import check_settings
from kerascnn.attacks.pgd import STEP_FRACTION, pgd
from kerascnn.errors import BadValue
from kerascnn.experiments.common import model_label
from kerascnn.outputs.document import Table

ATTACKS = ("fgsm", "pgd")
#: eps of the curve when none are given: Madry et al.'s MNIST range for linf; a matching L2 range.
DEFAULT_EPS = {"linf": (0.0, 0.05, 0.1, 0.2, 0.3), "l2": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)}


@dataclass
class Options:
    attacks: tuple = ATTACKS         # "fgsm" (FGM for l2) and/or "pgd"
    norm: str = "linf"               # "linf" or "l2"
    eps: tuple | None = None         # radii (None: DEFAULT_EPS[norm])
    steps: int = 40                  # PGD steps
    step_fraction: float = STEP_FRACTION  # PGD step / eps (Madry et al.: 0.01 at 0.3)
    restarts: int = 1                # PGD random restarts (each only on images not yet fooled)
    count: int = 1000                # the first `count` test images
    sanity: int = 100                # images attacked at a huge eps, where accuracy must reach 0 (0: skip)
    seed: int = 0
    batch_size: int | None = None    # images per attack call (None: as many as fit; kerascnn.model.batching)

    def resolved(self) -> "Options":

        check_norm(self.norm)
        attacks = tuple(dict.fromkeys("fgsm" if a == "fgm" else a for a in self.attacks))
        if not attacks or any(a not in ATTACKS for a in attacks):
            raise BadValue("attacks", f"choose from {', '.join(ATTACKS)}, got {', '.join(self.attacks) or 'none'}")
        check_settings(steps=self.steps)
        for name in ("count", "restarts", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise BadValue(name, f"must be at least 1, got {getattr(self, name)}")
        if self.sanity < 0:
            raise BadValue("sanity", f"must be 0 or more, got {self.sanity}")
        eps = check_epsilons(DEFAULT_EPS[self.norm] if self.eps is None else self.eps)
        return replace(self, attacks=attacks, eps=eps)


@dataclass
class Result:
    options: Options                 # resolved: eps sorted
    model: str
    labels: np.ndarray               # (N,) true classes
    clean_correct: np.ndarray        # (N,) bool
    correct: dict                    # attack -> (E, N) bool: right clean and under attack at eps[e]
    per_restart: list                # PGD accuracy after restarts 1..R, per eps: (E, R)
    sanity_eps: float | None
    sanity_accuracy: float | None    # PGD accuracy at sanity_eps on the first `sanity` images
    examples: dict                   # attack -> (E, k, H, W, C): the first k images at each eps
    originals: np.ndarray            # (k, H, W, C)
    seconds: dict                    # attack -> wall seconds
    class_names: tuple | None = None
    gradient_steps: dict = field(default_factory=dict)  # attack -> image-gradient evaluations (upper bound)
    example_predictions: dict = field(default_factory=dict)  # attack -> (E, k) predicted classes of `examples`
    eps_model_units: list = field(default_factory=list)  # each eps in the model's own input units (kerascnn.model.domain)

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.mean())

    def accuracy(self, attack: str) -> np.ndarray:
        return self.correct[attack].mean(axis=1)

    def per_class(self, attack: str) -> dict:
        """{class: [accuracy at each eps]} over the images of each true class."""
        return {int(c): self.correct[attack][:, self.labels == c].mean(axis=1).tolist() for c in np.unique(self.labels)}

    def checks(self) -> dict:
        """The signs of gradient masking, each True when all is well."""
        out = {}
        for attack in self.correct:
            acc = self.accuracy(attack)
            out[f"{attack}_never_rises_with_eps"] = bool(np.all(np.diff(acc) <= 0))
        if "fgsm" in self.correct and "pgd" in self.correct:
            out["pgd_never_above_fgsm"] = bool(np.all(self.accuracy("pgd") <= self.accuracy("fgsm")))
        if self.per_restart is not None and len(self.per_restart):
            out["restarts_never_raise_accuracy"] = bool(np.all(np.diff(np.asarray(self.per_restart), axis=1) <= 0))
        if self.sanity_accuracy is not None:
            out["zero_at_huge_eps"] = self.sanity_accuracy == 0.0
        return out

    def to_dict(self) -> dict:
        o = self.options
        return {"model": self.model, "norm": o.norm, "eps": list(o.eps), "eps_model_units": self.eps_model_units,
                "count": len(self.labels),
                "clean_accuracy": self.clean_accuracy,
                "accuracy": {a: self.accuracy(a).tolist() for a in self.correct},
                "per_class": {a: {str(c): v for c, v in self.per_class(a).items()} for a in self.correct},
                "pgd_accuracy_per_restart": None if self.per_restart is None else np.asarray(self.per_restart).tolist(),
                "sanity": {"eps": self.sanity_eps, "pgd_accuracy": self.sanity_accuracy},
                "checks": self.checks(), "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "images_per_second": {a: round(len(self.labels) * (len(o.eps) - (0.0 in o.eps)) / s, 1)
                                      for a, s in self.seconds.items() if s > 0},
                "settings": {"steps": o.steps, "step_fraction": o.step_fraction, "restarts": o.restarts,
                             "seed": o.seed, "random_start": True, "loss": "cross-entropy", "untargeted": True}}


def huge_eps(norm: str, shape) -> float:
    """A radius that reaches every image of the shape: linf 1, L2 the length of the all-ones image."""
    return 1.0 if norm == "linf" else float(np.sqrt(np.prod(shape)))


def run(subject, options: Options, progress=None) -> Result:
    import time


    options = options.resolved()
    images, labels = subject.task.test()
    images, labels = images[:options.count], labels[:options.count]
    model = subject.logits_model
    clean_correct = subject.logits(images).argmax(axis=1) == labels
    attacked = [e for e in options.eps if e > 0]
    tiled = np.tile(images, (len(attacked), 1, 1, 1))
    radii = np.repeat(np.asarray(attacked, np.float32), len(images))
    shown = min(8, len(images))
    correct, examples, predictions, seconds, per_restart, steps_used = {}, {}, {}, {}, None, {}
    for attack in options.attacks:
        begin = time.perf_counter()
        if not attacked:
            result = None
        elif attack == "fgsm":
            result = fgm(model, tiled, np.tile(labels, len(attacked)), radii, norm=options.norm,
                         batch_size=options.batch_size)
        else:
            result = pgd(model, tiled, np.tile(labels, len(attacked)), radii, norm=options.norm, steps=options.steps,
                         step_fraction=options.step_fraction, restarts=options.restarts, seed=options.seed,
                         batch_size=options.batch_size, progress=progress)
        seconds[attack] = time.perf_counter() - begin
        rows, pictures, predicted = [], [], []
        for e in options.eps:
            if e == 0:
                rows.append(clean_correct)
                pictures.append(images[:shown])
                predicted.append(subject.logits(images[:shown]).argmax(axis=1))
                continue
            k = attacked.index(e)
            part = slice(k * len(images), (k + 1) * len(images))
            rows.append(clean_correct & (result.predicted[part] == labels))
            pictures.append(result.images[part][:shown])
            predicted.append(result.predicted[part][:shown])
        correct[attack] = np.array(rows)
        examples[attack] = np.array(pictures)
        predictions[attack] = np.array(predicted)
        steps_used[attack] = len(tiled) * (1 if attack == "fgsm" else options.steps * options.restarts)
        if attack == "pgd" and result is not None:
            # accuracy after each restart, per eps (clean mistakes count as wrong throughout)
            per_restart = [[float((clean_correct & r[k * len(images):(k + 1) * len(images)]).mean())
                            for r in result.correct_per_restart] for k in range(len(attacked))]
    sanity_eps = sanity = None
    if options.sanity and "pgd" in options.attacks:
        sanity_eps = huge_eps(options.norm, subject.input_shape)
        few = min(options.sanity, len(images))
        result = pgd(model, images[:few], labels[:few], sanity_eps, norm=options.norm, steps=options.steps,
                     step_fraction=options.step_fraction, seed=options.seed)
        sanity = float(np.mean(~result.success))
    return Result(options, model_label(subject), labels, clean_correct, correct, per_restart, sanity_eps, sanity, examples,
                  images[:shown], seconds, subject.class_names, steps_used, predictions,
                  [subject.eps_in_model_units(e) for e in options.eps])


def attack_label(attack: str, norm: str) -> str:
    return ("FGSM" if norm == "linf" else "FGM (L2)") if attack == "fgsm" else "PGD"


def curves(result: Result) -> list[dict]:
    """The result as the curves `plots.robustness_curves` draws."""
    o = result.options
    label = {"fgsm": attack_label("fgsm", o.norm), "pgd": f"PGD-{o.steps}" + (f" x{o.restarts}" if o.restarts > 1 else "")}
    return [{"label": label[a], "eps": list(o.eps), "accuracy": result.accuracy(a).tolist(),
             "clean": result.clean_accuracy, "model": result.model} for a in result.correct]


def figures(result: Result) -> dict:
    from kerascnn.plots import robustness as plots

    o = result.options
    out = {"robustness.png": plots.robustness_curves(curves(result), f"{result.model}: accuracy under attack on "
                                                                      f"{len(result.labels)} test images ({o.norm})", o.norm)}
    attack = "pgd" if "pgd" in result.examples else next(iter(result.examples))
    shown = len(result.originals)
    rows = [(f"eps {e:g}", result.examples[attack][i], result.example_predictions[attack][i])
            for i, e in enumerate(o.eps) if e > 0]
    if rows:
        out["examples.png"] = plots.adversarial_examples(result.originals, rows, result.labels[:shown], result.class_names)
    return out


def table(result: Result):

    o = result.options
    header = ["eps"] + [attack_label(a, o.norm) for a in result.correct]
    rows = [[f"{e:g}"] + [f"{result.accuracy(a)[i]:.1%}" for a in result.correct] for i, e in enumerate(o.eps)]
    failed = [name for name, ok in result.checks().items() if not ok]
    caption = (f"{result.model}: accuracy under {o.norm} attacks on the first {len(result.labels)} test images "
               f"(untargeted; PGD: {o.steps} steps of {o.step_fraction:.3g} eps from a random start, "
               f"{o.restarts} restart(s)); checks: " + ("all passed" if not failed else "FAILED " + ", ".join(failed)))
    return Table(header, rows, caption, numeric=tuple(range(len(header))))


def summary(result: Result) -> str:
    o = result.options
    parts = []
    for a in result.correct:
        acc = result.accuracy(a)
        parts.append(f"{attack_label(a, o.norm)} " + ", ".join(f"{v:.1%} at {e:g}" for e, v in zip(o.eps, acc) if e > 0))
    checks = result.checks()
    failed = [k for k, ok in checks.items() if not ok]
    few = min(o.sanity, len(result.labels))
    sanity = ("" if result.sanity_accuracy is None else
              f" At eps {result.sanity_eps:g} PGD leaves {result.sanity_accuracy:.0%} of {few} images correct.")
    return (f"{result.model}, clean accuracy {result.clean_accuracy:.1%} on {len(result.labels)} test images; under "
            f"attack: {'; '.join(parts)}.{sanity} Gradient-masking checks: "
            + ("all passed." if not failed else f"FAILED: {', '.join(failed)} (treat these numbers as upper bounds). "
               + " ".join(FIXES[k].format(steps=o.steps, fraction=o.step_fraction) for k in failed if k in FIXES)))


#: What to change when a check fails (robustness's own settings first).
FIXES = {
    "pgd_never_above_fgsm": "PGD is weaker than one FGSM step somewhere: its {steps} steps of {fraction:.3g} eps "
                            "cannot cross the ball; give --step-fraction about 2.5 / --steps (Madry et al.) or more "
                            "--steps.",
    "pgd_never_rises_with_eps": "PGD's accuracy rises with eps: raise --steps or --restarts; if it persists, the "
                                "gradients are masked.",
    "fgsm_never_rises_with_eps": "FGSM's accuracy rises with eps: one step overshoots; read PGD's numbers instead.",
    "restarts_never_raise_accuracy": "a restart raised the accuracy: a bug; please report it.",
    "zero_at_huge_eps": "PGD leaves images correct at a huge eps: the gradients are masked (or too few --steps).",
}
