"""Robustness: accuracy under eps-bounded attacks at several eps, on the first `count` test images,
untargeted, as the field measures it.

Columns: FGSM (one step), PGD (Madry et al.: a random start, `steps` steps of 2.5 eps / steps) and
the AutoAttack ensemble or any subset of its components (attacks.autoattack: APGD-CE, APGD-T,
FAB-T, Square, ...), run one after the other on the images still right. The default, FGSM and
APGD-CE, is the cheap pair whose APGD-CE number sits close to the full AutoAttack; `autoattack` gives
the number to publish. Every number is an upper bound on the true robust accuracy: an attack can
only show that an image is not robust.

An image counts as correct at eps when the model is right on it clean and on the attacked copy
(accuracy is re-predicted from the returned arrays). All the eps of one attack go through the model
as one batch of count x eps images. The checks that make gradient masking visible (Carlini et al.
2019) live in experiments.robustness_checks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kerascnn.attacks.ensemble import autoattack
from kerascnn.attacks.fgm import fgm_curve
from kerascnn.attacks.projected_gradient import pgd
from kerascnn.experiments.common import model_label
from kerascnn.experiments.robustness_checks import checks, flags, hints
from kerascnn.experiments.robustness_options import (  # noqa: F401 (the CLI reads them here)
    ATTACKS,
    DEFAULT_ATTACKS,
    DEFAULT_EPS,
    ITERATIONS,
    Options,
)
from kerascnn.outputs.document import Table


@dataclass
class Result:
    options: Options                 # resolved: eps sorted
    model: str
    labels: np.ndarray               # (N,) true classes
    clean_correct: np.ndarray        # (N,) bool
    correct: dict                    # column -> (E, N) bool: right clean and under attack at eps[e]
    per_restart: list                # PGD accuracy after restarts 1..R, per eps: (E, R)
    sanity_eps: float | None
    sanity_accuracy: float | None    # the strongest gradient attack's accuracy at sanity_eps on the first `sanity`
    examples: dict                   # column -> (E, k, H, W, C): the first k images at each eps
    originals: np.ndarray            # (k, H, W, C)
    seconds: dict                    # column -> wall seconds
    class_names: tuple | None = None
    gradient_steps: dict = field(default_factory=dict)  # column -> image-gradient evaluations (upper bound)
    example_predictions: dict = field(default_factory=dict)  # column -> (E, k) predicted classes of `examples`
    eps_model_units: list = field(default_factory=list)  # each eps in the model's own input units (kerascnn.model.domain)
    after: dict = field(default_factory=dict)  # ensemble component -> (E,) accuracy after it (running, as AutoAttack prints)
    component_seconds: dict = field(default_factory=dict)  # ensemble component -> wall seconds
    sanity_attack: str = "pgd"

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.mean())

    def accuracy(self, attack: str) -> np.ndarray:
        return self.correct[attack].mean(axis=1)

    def per_class(self, attack: str) -> dict:
        """{class: [accuracy at each eps]} over the images of each true class."""
        return {int(c): self.correct[attack][:, self.labels == c].mean(axis=1).tolist() for c in np.unique(self.labels)}

    def checks(self) -> dict:
        """The signs of gradient masking and of a weak attack, each True when all is well."""
        return checks(self)

    def to_dict(self) -> dict:
        o = self.options
        return {"model": self.model, "norm": o.norm, "eps": list(o.eps), "eps_model_units": self.eps_model_units,
                "count": len(self.labels),
                "clean_accuracy": self.clean_accuracy,
                "accuracy": {a: self.accuracy(a).tolist() for a in self.correct},
                "upper_bounds": True,
                "per_class": {a: {str(c): v for c, v in self.per_class(a).items()} for a in self.correct},
                "pgd_accuracy_per_restart": None if self.per_restart is None else np.asarray(self.per_restart).tolist(),
                "ensemble": None if not o.ensemble else {
                    "column": o.ensemble, "version": o.version if o.ensemble == "autoattack" else "custom",
                    "components": list(o.components),
                    "accuracy_after": {c: np.asarray(v).tolist() for c, v in self.after.items()},
                    "seconds": {c: round(v, 3) for c, v in self.component_seconds.items()}},
                "sanity": {"eps": self.sanity_eps, "attack": self.sanity_attack, "accuracy": self.sanity_accuracy},
                "checks": self.checks(), "flags": flags(self),
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "images_per_second": {a: round(len(self.labels) * (len(o.eps) - (0.0 in o.eps)) / s, 1)
                                      for a, s in self.seconds.items() if s > 0},
                "settings": {"steps": o.steps, "pgd_steps": o.pgd_steps, "pgd_step_fraction": o.pgd_step_fraction,
                             "restarts": o.restarts, "version": o.version, "queries": o.queries, "seed": o.seed,
                             "random_start": True, "untargeted": True}}


def huge_eps(norm: str, shape) -> float:
    """A radius that reaches every image of the shape: linf 1, L2 the length of the all-ones image."""
    return 1.0 if norm == "linf" else float(np.sqrt(np.prod(shape)))


def _attack(column: str, model, images, labels, radii, options: Options, progress=None, after=None):
    """One column's attack on the tiled images -> its BoundedResult (FGSM's column: fgm_curve, in run)."""
    o = options
    if column == "pgd":
        return pgd(model, images, labels, radii, norm=o.norm, steps=o.pgd_steps, step_fraction=o.pgd_step_fraction,
                   restarts=o.restarts, seed=o.seed, batch_size=o.batch_size, progress=progress)
    return autoattack(model, images, labels, radii, norm=o.norm, version=o.version,
                      components=None if column == "autoattack" else o.components, steps=o.steps or ITERATIONS,
                      queries=o.queries, seed=o.seed, batch_size=o.batch_size, progress=progress, on_component=after)


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
    n, shown = len(images), min(8, len(images))
    correct, examples, predictions, seconds, per_restart, steps_used = {}, {}, {}, {}, None, {}
    after, component_seconds = {}, {}

    def by_eps(right):  # (len(attacked) * n,) -> (E,) accuracy, the clean column first where eps 0 is asked
        rows = [clean_correct if e == 0 else clean_correct & right[attacked.index(e) * n:(attacked.index(e) + 1) * n]
                for e in options.eps]
        return np.mean(rows, axis=1)

    def share(k, units):  # column k's progress, in its own units, as a percent of the whole run
        if progress is None:
            return None
        return lambda done, fooled, total: progress(int(100 * (k + min(done / units, 1)) / len(options.columns)),
                                                    fooled, total)

    for k, column in enumerate(options.columns):
        begin = time.perf_counter()
        result = None
        if attacked:
            units = options.pgd_steps * options.restarts if column == "pgd" else 100
            if column == "fgsm":  # one gradient per image for every eps (fgm_curve), the tiled layout
                result = fgm_curve(model, images, labels, attacked, norm=options.norm, batch_size=options.batch_size)
            else:
                result = _attack(column, model, tiled, np.tile(labels, len(attacked)), radii, options,
                                 share(k, units), lambda name, right: after.__setitem__(name, by_eps(right)))
        seconds[column] = time.perf_counter() - begin
        rows, pictures, predicted = [], [], []
        for e in options.eps:
            if e == 0:
                rows.append(clean_correct)
                pictures.append(images[:shown])
                predicted.append(subject.logits(images[:shown]).argmax(axis=1))
                continue
            part = slice(attacked.index(e) * n, (attacked.index(e) + 1) * n)
            rows.append(clean_correct & (result.predicted[part] == labels))
            pictures.append(result.images[part][:shown])
            predicted.append(result.predicted[part][:shown])
        correct[column], examples[column], predictions[column] = np.array(rows), np.array(pictures), np.array(predicted)
        steps_used[column] = len(tiled) * (1 if column == "fgsm" else options.pgd_steps * options.restarts
                                           if column == "pgd" else (options.steps or ITERATIONS))
        if result is not None and column == "pgd":
            # accuracy after each restart, per eps (clean mistakes count as wrong throughout)
            per_restart = [[float((clean_correct & r[k * n:(k + 1) * n]).mean()) for r in result.correct_per_restart]
                           for k in range(len(attacked))]
        if result is not None and column == options.ensemble:
            component_seconds = dict(result.settings["seconds"])
    sanity_eps = sanity = None
    sanity_attack = "pgd" if "pgd" in options.columns else "apgd-ce"
    if options.sanity and len(options.columns) > ("fgsm" in options.columns):
        sanity_eps = huge_eps(options.norm, subject.input_shape)
        few = min(options.sanity, n)
        if sanity_attack == "pgd":
            result = _attack("pgd", model, images[:few], labels[:few], sanity_eps, options)
        else:
            result = autoattack(model, images[:few], labels[:few], sanity_eps, norm=options.norm,
                                components=("apgd-ce",), steps=options.steps or ITERATIONS, seed=options.seed)
        sanity = float(np.mean(~result.success))
    return Result(options, model_label(subject), labels, clean_correct, correct, per_restart, sanity_eps, sanity,
                  examples, images[:shown], seconds, subject.class_names, steps_used, predictions,
                  [subject.eps_in_model_units(e) for e in options.eps], after, component_seconds, sanity_attack)


def attack_label(attack: str, options: Options) -> str:
    """The column's name in tables and legends."""
    o = options
    if attack == "fgsm":
        return "FGSM" if o.norm == "linf" else "FGM (L2)"
    if attack == "pgd":
        return f"PGD-{o.pgd_steps}" + (f" x{o.restarts}" if o.restarts > 1 else "")
    if attack == "autoattack":
        return "AutoAttack" + ("" if o.version == "standard" else f" ({o.version})")
    return "+".join(c.upper() for c in attack.split("+"))


def curves(result: Result) -> list[dict]:
    """The result as the curves `plots.robustness_curves` draws."""
    o = result.options
    return [{"label": attack_label(a, o), "eps": list(o.eps), "accuracy": result.accuracy(a).tolist(),
             "clean": result.clean_accuracy, "model": result.model} for a in result.correct]


def figures(result: Result) -> dict:
    from kerascnn.plots import robustness as plots

    o = result.options
    title = f"{result.model}: accuracy under attack on {len(result.labels)} test images ({o.norm})"
    pixels = int(np.prod(np.shape(result.originals)[1:])) or None  # L2's whole pixel range is sqrt(pixels)
    out = {"robustness.png": plots.robustness_curves(curves(result), title, o.norm, pixels=pixels)}
    examples = examples_figure(result)
    if examples is not None:
        out["examples.png"] = examples
    return out


def examples_figure(result: Result):
    """The first images attacked at each eps by the strongest column (None when no eps is above 0)."""
    from kerascnn.plots import robustness as plots

    o = result.options
    attack = o.ensemble or ("pgd" if "pgd" in result.examples else next(iter(result.examples)))
    shown = len(result.originals)
    rows = [(f"eps {e:g}", result.examples[attack][i], result.example_predictions[attack][i])
            for i, e in enumerate(o.eps) if e > 0]
    if not rows:
        return None
    return plots.adversarial_examples(result.originals, rows, result.labels[:shown], result.class_names,
                                      f"{result.model}: {attack_label(attack, o)} examples")


def table(result: Result):

    o = result.options
    running = list(result.after)[:-1] if len(result.after) > 1 else []
    header = (["eps"] + [attack_label(a, o) for a in result.correct if a != o.ensemble]
              + [f"after {c.upper()}" for c in running] + ([attack_label(o.ensemble, o)] if o.ensemble else []))
    marks = flags(result)
    rows = []
    for i, e in enumerate(o.eps):
        row = [f"{e:g}"] + [f"{result.accuracy(a)[i]:.1%}" + ("*" if e in marks["above_autoattack"].get(a, []) else "")
                            for a in result.correct if a != o.ensemble]
        row += [f"{result.after[c][i]:.1%}" for c in running]
        rows.append(row + ([f"{result.accuracy(o.ensemble)[i]:.1%}"] if o.ensemble else []))
    failed = [name for name, ok in result.checks().items() if not ok]
    pgd = (f"PGD: {o.pgd_steps} steps of {o.pgd_step_fraction:.3g} eps from a random start, {o.restarts} restart(s); "
           if "pgd" in result.correct else "")
    ensemble = (f"{attack_label(o.ensemble, o)}: {' then '.join(o.components)}, each on the images still right; "
                if o.ensemble else "")
    caption = (f"{result.model}: accuracy under {o.norm} attacks on the first {len(result.labels)} test images "
               f"(untargeted; {pgd}{ensemble}every number an upper bound; * more than 2 points above AutoAttack); "
               f"checks: " + ("all passed" if not failed else "FAILED " + ", ".join(failed)))
    return Table(header, rows, caption, numeric=tuple(range(len(header))))


def summary(result: Result) -> str:
    o = result.options
    parts = []
    for a in result.correct:
        acc = result.accuracy(a)
        parts.append(f"{attack_label(a, o)} " + ", ".join(f"{v:.1%} at {e:g}" for e, v in zip(o.eps, acc) if e > 0))
    running = ""
    if len(result.after) > 1:
        running = " Running accuracy of the ensemble: " + "; ".join(
            f"at {e:g} " + " -> ".join(f"{c} {result.after[c][i]:.1%}" for c in result.after)
            for i, e in enumerate(o.eps) if e > 0) + "."
    failed = [k for k, ok in result.checks().items() if not ok]
    few = min(o.sanity, len(result.labels))
    sanity = ("" if result.sanity_accuracy is None else f" At eps {result.sanity_eps:g} {result.sanity_attack.upper()} "
              f"leaves {result.sanity_accuracy:.0%} of {few} images correct.")
    return (f"{result.model}, clean accuracy {result.clean_accuracy:.1%} on {len(result.labels)} test images; under "
            f"attack: {'; '.join(parts)}.{running}{sanity} Gradient-masking checks: "
            + ("all passed." if not failed else f"FAILED: {', '.join(failed)} (treat these numbers as upper bounds). "
               + hints(result, failed)))
