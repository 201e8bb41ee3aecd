"""The robustness of a model beside others (the report's robustness section): for each model its
accuracy under FGSM and APGD-CE against eps and under the full AutoAttack at one eps on fewer
images (experiments.robustness), its median minimal perturbation in
L2 and L-infinity (experiments.minimal); for the first model the universal noise against the one-image
noise at the same budget (experiments.universal); and the transfer matrix of all of them
(experiments.transfer). Counts are smaller than the commands' defaults, so that the report stays
quick; the commands give the full numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kerascnn import SAVED_MODELS
from kerascnn.experiments import minimal, robustness, transfer, universal
from kerascnn.model.subject import Subject
from kerascnn.outputs.document import Table


@dataclass
class Options:
    others: tuple = ()               # further models (.keras files or run folders) set beside the subject
    count: int = 200                 # test images for the curves and the transfer matrix
    minimal_count: int = 50          # test images for the minimal perturbations
    fit: int = 500                   # training images each universal noise is fitted on
    universal_count: int = 1000      # held-out test images the first model's universal noise is measured on
    universal_noise_steps: int = universal.Options.noise_steps  # the one-image noise it is set against: its steps
    transfer_eps: float = 0.2
    autoattack_eps: float = 0.1      # the one eps of the full AutoAttack (standard version)
    autoattack_count: int = 50       # test images for it (the first ones)
    autoattack_models: int | None = None  # AutoAttack on the first N models only (None: all)
    autoattack_queries: int = 5000   # Square's queries (the standard version's 5,000)
    minimal_fab: bool = True         # minimal perturbations: also FAB-T, the smaller per image (else FMN alone)
    minimal_steps: int = 300         # FMN's steps


@dataclass
class Result:
    curves: list                     # robustness.Result per model
    autoattack: list                 # robustness.Result per model: AutoAttack at autoattack_eps
    minimal: dict                    # norm -> [minimal.Result per model]
    universal: object                # universal.Result of the first model
    transfer: object | None          # transfer.Result (None with one model)
    options: Options = field(default_factory=Options)

    @property
    def names(self) -> list[str]:
        return [r.model for r in self.curves]

    @property
    def autoattack_per_model(self) -> list:
        """AutoAttack's result per model of `curves`, None for those it did not run on (autoattack_models)."""
        return self.autoattack + [None] * (len(self.curves) - len(self.autoattack))

    def to_dict(self) -> dict:
        return {"models": self.names, "counts": {"curves": self.options.count, "minimal": self.options.minimal_count,
                                                 "autoattack": self.options.autoattack_count},
                "robustness": {r.model: r.to_dict() for r in self.curves},
                "autoattack": {r.model: r.to_dict() for r in self.autoattack},
                "minimal_median": {norm: {r.model: r.attack.median() for r in results}
                                   for norm, results in self.minimal.items()},
                "universal": self.universal.to_dict(),
                "transfer": None if self.transfer is None else self.transfer.to_dict()}


def run(subject, options: Options, progress=None) -> Result:

    shared = subject.domain if subject.domain.given_by_user else None  # given once for all; else read off each
    subjects = [subject] + [Subject.load(path, subject.task, domain=shared) for path in options.others]
    # the sanity check (0% at eps 1) on as many images as the curves, not the command's 100
    curves = [robustness.run(s, robustness.Options(count=options.count, sanity=min(100, options.count)))
              for s in subjects]
    strongest = [robustness.run(s, robustness.Options(attacks=("autoattack",), eps=(options.autoattack_eps,),
                                                      count=options.autoattack_count, sanity=0,
                                                      queries=options.autoattack_queries))
                 for s in subjects[:options.autoattack_models]]
    smallest = {norm: [minimal.shared(s, minimal.Options(norm=norm, count=options.minimal_count,
                                                          fab=options.minimal_fab, steps=options.minimal_steps))
                       for s in subjects] for norm in ("l2", "linf")}
    noise = universal.run(subject, universal.Options(fit=options.fit, count=options.universal_count,
                                                     noise_steps=options.universal_noise_steps))
    matrix = None
    if len(subjects) > 1:
        matrix = transfer.run(subjects, subjects, transfer.Options(eps=options.transfer_eps, count=options.count,
                                                                   fit=options.fit))
    return Result(curves, strongest, smallest, noise, matrix, options)


def figures(result: Result) -> dict:
    from kerascnn.plots import robustness as plots

    lines = [c for r in result.curves for c in robustness.curves(r)]
    out = {"curves.png": plots.robustness_curves(lines, f"Accuracy under linf attacks ({result.options.count} test images)",
                                                 "linf")}
    for norm, results in result.minimal.items():
        out[f"minimal_{norm}.png"] = plots.norm_histogram({r.model: r.attack.distance for r in results}, norm,
                                                          f"Smallest {norm} change of the prediction "
                                                          f"({result.options.minimal_count} test images)")
    out.update(universal.figures(result.universal))
    if result.transfer is not None:
        out.update(transfer.figures(result.transfer))
    return out


def table(result: Result):

    eps = result.curves[0].options.eps
    attacked = [e for e in eps if e > 0]
    o = result.options
    header = (["model", "clean"] + [f"APGD-CE {e:g}" for e in attacked] + [f"FGSM {attacked[-1]:g}"]
              + [f"AutoAttack {o.autoattack_eps:g}", "median L2", "median Linf", "checks"])
    rows = []
    for i, (r, strong) in enumerate(zip(result.curves, result.autoattack_per_model)):
        apgd, fgsm = r.accuracy("apgd-ce"), r.accuracy("fgsm")
        failed = [k for k, ok in r.checks().items() if not ok]
        rows.append([r.model, f"{r.clean_accuracy:.1%}"] + [f"{apgd[eps.index(e)]:.1%}" for e in attacked]
                    + [f"{fgsm[-1]:.1%}", "-" if strong is None else f"{strong.accuracy('autoattack')[-1]:.1%}",
                       f"{result.minimal['l2'][i].attack.median():.3g}",
                       f"{result.minimal['linf'][i].attack.median():.3g}",
                       "passed" if not failed else "FAILED: " + ", ".join(failed)])
    return Table(header, rows, f"Accuracy under linf attacks on the first {o.count} test images (APGD-CE, 100 "
                               f"iterations), under AutoAttack at {o.autoattack_eps:g} on the first "
                               f"{o.autoattack_count} ({_autoattack_words(o)}), and the median smallest "
                               f"perturbation ({'FMN and FAB-T' if o.minimal_fab else 'FMN'}, {o.minimal_steps} steps) over "
                               f"{o.minimal_count}: every accuracy an upper bound; smaller counts than the commands' "
                               f"(kerascnn robustness --attack autoattack, attack minimal) so that the report stays "
                               f"quick", numeric=tuple(range(1, len(header) - 1)))


def summary(result: Result) -> str:
    parts = []
    o = result.options
    for i, (r, strong) in enumerate(zip(result.curves, result.autoattack_per_model)):
        text = f"{r.model} keeps {r.accuracy('apgd-ce')[-1]:.0%} under APGD-CE at eps {r.options.eps[-1]:g}"
        if strong is not None:
            text += (f" and {strong.accuracy('autoattack')[-1]:.0%} of {o.autoattack_count} under AutoAttack at "
                     f"{o.autoattack_eps:g} ({_autoattack_words(o)})")
        parts.append(text + f" (median minimal L2 {result.minimal['l2'][i].attack.median():.3g})")
    text = "; ".join(parts) + ". " + universal.summary(result.universal)
    if result.transfer is not None:
        text += " " + transfer.summary(result.transfer)
    return text + f" (Counts: {result.options.count} images for the curves, {result.options.minimal_count} for minimal norms.)"


def _autoattack_words(o: Options) -> str:
    square = "standard" if o.autoattack_queries == 5000 else f"standard, Square at {o.autoattack_queries:,} queries"
    return square if o.autoattack_models is None else f"{square}, the first model only"


def shipped_others(subject) -> tuple:
    """On MNIST with the shipped cnn: the other shipped models present (cnn_bn, cnn_pgd)."""

    shipped = SAVED_MODELS.resolve()
    if subject.path is None or subject.path.resolve().parent.parent != shipped or not subject.task.is_mnist:
        return ()
    return tuple(str(shipped / n) for n in ("cnn", "cnn_bn", "cnn_pgd")
                 if (shipped / n / "model.keras").is_file() and shipped / n != subject.path.resolve().parent)
