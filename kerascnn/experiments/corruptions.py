"""Accuracy under common corruptions (Hendrycks & Dietterich 2019; MNIST-C, Mu & Gilmer 2019): the
first `count` test images under each corruption of a suite at each severity, for the subject and
any `others` on the very same corrupted images, and the corruption error against a baseline model.

Corruption error of corruption c (Hendrycks & Dietterich): the model's errors summed over the
severities, divided by the baseline's; mCE is its mean over the corruptions (100% = as good as the
baseline, lower is better). The relative mCE does the same with each model's drop from its own clean
error, which separates "worse everywhere" from "worse under corruption".

The suites are generated here (kerascnn.corrupt, seeded, no download); `source="tfds"` reads the
published sets instead (MNIST-C: one severity per corruption; CIFAR-10-C: all five).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from kerascnn import SAVED_MODELS
from kerascnn.corrupt import SEVERITIES, check_names, check_severities, corrupt, suite
from kerascnn.errors import BadValue
from kerascnn.experiments.common import model_label
from kerascnn.outputs.document import Table

SOURCES = ("local", "tfds")


@dataclass
class Options:
    suite: str | None = None          # "mnist-c" or "common" (None: mnist-c for 28 x 28 grey tasks, else common)
    corruptions: tuple | None = None  # names within the suite (None: all 15)
    severities: tuple = SEVERITIES
    count: int = 1000                 # the first test images
    source: str = "local"             # "local" (generated) or "tfds" (the published sets)
    baseline: str | None = None       # the mCE's reference model (None: the shipped cnn on 28 x 28 grey 10-class
                                      # tasks, else none; "none": none)
    others: tuple = ()                # further models run on the same corrupted images
    seed: int = 0
    example: int = 0                  # the test image shown under every corruption

    def resolved_suite(self, task) -> str:
        return self.suite or ("mnist-c" if task.input_shape == (28, 28, 1) else "common")

    def check(self) -> None:
        if self.source not in SOURCES:
            raise BadValue("source", f"unknown source {self.source!r}: choose from {', '.join(SOURCES)}")
        if self.suite is not None:
            suite(self.suite)
            check_names(self.suite, self.corruptions)
        if not self.severities:
            raise BadValue("severity", "give at least one severity (1-5)")
        check_severities(self.severities)
        if self.count < 1:
            raise BadValue("count", f"must be at least 1, got {self.count}")


@dataclass
class ModelAccuracy:
    model: str
    clean: float
    accuracy: np.ndarray              # (corruptions, severities)

    @property
    def mean(self) -> float:
        return float(self.accuracy.mean())


@dataclass
class Result:
    options: Options
    suite: str
    names: tuple
    severities: tuple                 # per column; with source tfds on MNIST-C, the published one per corruption
    models: list                      # ModelAccuracy per model, the subject first
    baseline: ModelAccuracy | None
    examples: np.ndarray              # (corruptions, H, W, C): the example image at the middle severity
    clean_example: np.ndarray
    example_severity: int
    count: int
    seconds: dict = field(default_factory=dict)
    published_severity: dict | None = None   # tfds MNIST-C: {name: its one severity}

    def corruption_errors(self, m: ModelAccuracy, relative: bool = False) -> np.ndarray | None:
        """(corruptions,) CE against the baseline (None without one); NaN where the baseline makes no error."""
        if self.baseline is None:
            return None
        mine, base = (1 - m.accuracy).sum(1), (1 - self.baseline.accuracy).sum(1)
        if relative:
            k = len(self.severities)
            mine, base = mine - k * (1 - m.clean), base - k * (1 - self.baseline.clean)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(base > 0, mine / np.where(base > 0, base, 1), np.nan)

    def mce(self, m: ModelAccuracy, relative: bool = False) -> float | None:
        ce = self.corruption_errors(m, relative)
        if ce is None or np.all(np.isnan(ce)):
            return None
        return float(np.nanmean(ce))

    def to_dict(self) -> dict:
        def model_dict(m):
            out = {"clean_accuracy": m.clean, "mean_corruption_accuracy": m.mean,
                   "accuracy": {n: [float(a) for a in row] for n, row in zip(self.names, m.accuracy)}}
            if self.baseline is not None:
                ce, rel = self.corruption_errors(m), self.corruption_errors(m, relative=True)
                out |= {"corruption_error": {n: _finite(v) for n, v in zip(self.names, ce)},
                        "relative_corruption_error": {n: _finite(v) for n, v in zip(self.names, rel)},
                        "mce": _finite(self.mce(m)), "relative_mce": _finite(self.mce(m, relative=True))}
            return out

        o = self.options
        return {"model": self.models[0].model, "suite": self.suite, "source": o.source, "seed": o.seed,
                "count": self.count, "corruptions": list(self.names), "severities": list(self.severities),
                "published_severity": self.published_severity,
                "baseline": None if self.baseline is None else {"model": self.baseline.model, **model_dict(self.baseline)},
                "models": {m.model: model_dict(m) for m in self.models},
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def _finite(v):
    return None if v is None or not np.isfinite(v) else float(v)


def default_baseline(subject) -> str | None:
    """The shipped cnn, for 28 x 28 grey tasks of 10 classes (MNIST's shape), unless it is the subject."""
    shipped = SAVED_MODELS / "cnn"
    if not subject.task.mnist_shaped or not (shipped / "model.keras").is_file():
        return None
    if subject.path is not None and subject.path.resolve().parent == shipped.resolve():
        return "self"
    return str(shipped)


def progress_steps(options: Options, task) -> int:
    """The (corruption, severity) pairs a run measures: what its progress counts to."""
    name = options.resolved_suite(task)
    columns = 1 if options.source == "tfds" and name == "mnist-c" else len(options.severities)
    return len(check_names(name, options.corruptions)) * columns


def run(subject, options: Options, progress=None) -> Result:
    from kerascnn.model.subject import Subject

    options.check()
    task = subject.task
    name = options.resolved_suite(task)
    names = check_names(name, options.corruptions)
    count = task.check_count(options.count) if options.source == "local" else options.count
    images, labels = task.test()
    images, labels = images[:count], labels[:count]
    shared = subject.domain if subject.domain.given_by_user else None
    subjects = [subject] + [Subject.load(p, task, domain=shared) for p in options.others]
    base_path = default_baseline(subject) if options.baseline is None else options.baseline
    base_subject = None
    if base_path == "self":
        base_subject = subject
    elif base_path not in (None, "none"):
        base_subject = Subject.load(base_path, task, domain=shared)

    severities = tuple(options.severities)
    published = None
    if options.source == "tfds" and name == "mnist-c":
        severities = (0,)  # one column: each corruption's published severity
        from kerascnn.corrupt.mnist_c import PUBLISHED

        published = {n: PUBLISHED[n] for n in names}
    evaluated = subjects + ([base_subject] if base_subject is not None and base_subject is not subject else [])
    accuracy = [np.zeros((len(names), len(severities))) for _ in evaluated]
    middle = severities[len(severities) // 2]
    examples = []
    seconds = {"corrupting": 0.0, "predicting": 0.0}
    done, steps = 0, progress_steps(options, task)
    for i, n in enumerate(names):
        for j, s in enumerate(severities):
            begin = time.perf_counter()
            if options.source == "tfds":
                from kerascnn.corrupt import published as tfds_sets

                corrupted, truth = tfds_sets.load(name, n, s, count)
            else:
                corrupted, truth = corrupt(images, n, s, options.seed, name), labels
            seconds["corrupting"] += time.perf_counter() - begin
            begin = time.perf_counter()
            for k, model in enumerate(evaluated):
                accuracy[k][i, j] = model.accuracy(corrupted, truth)
            seconds["predicting"] += time.perf_counter() - begin
            if s == middle:
                examples.append(corrupted[min(options.example, len(corrupted) - 1)])
            done += 1
            if progress is not None:
                progress(done, done, steps)

    measured = [ModelAccuracy(model_label(s), s.accuracy(images, labels), a) for s, a in zip(evaluated, accuracy)]
    models = measured[:len(subjects)]
    baseline = None if base_subject is None else (models[0] if base_subject is subject else measured[-1])
    return Result(options, name, names, severities if severities != (0,) else ("published",), models, baseline,
                  np.stack(examples), images[min(options.example, count - 1)], middle, count, seconds, published)


def figures(result: Result) -> dict:
    from kerascnn.plots import corruptions as plots

    title = (f"{', '.join(m.model for m in result.models)} under {result.suite} corruptions ({result.count} test images"
             + (f", {result.options.source}" if result.options.source != "local" else "") + ")")
    return {"corruptions.png": plots.corruption_figure(
        result.clean_example, result.examples, result.names, [m.model for m in result.models],
        np.stack([m.accuracy for m in result.models]), [m.clean for m in result.models],
        [str(s) for s in result.severities], result.example_severity, title,
        None if result.baseline is None else (result.baseline.model, result.baseline.accuracy.mean(1)))}


def table(result: Result):
    many = len(result.models) > 1
    if many:  # one row per corruption (16 rows with the mCE: the report shows up to 16)
        header = ["corruption"] + [f"{m.model} (clean {m.clean:.1%}, mean {m.mean:.1%})" for m in result.models]
        rows = [[n] + [f"{m.accuracy[i].mean():.1%}" for m in result.models] for i, n in enumerate(result.names)]
        if result.baseline is not None:
            rows.append([f"mCE (vs {result.baseline.model})"] + [_pct(result.mce(m)) for m in result.models])
        caption = (f"Accuracy under {result.suite} corruptions, mean over severities {_sev(result)}, first "
                   f"{result.count} test images, the same corrupted images for every model"
                   + ("; mCE: errors summed over the severities, over the baseline's (lower is better)"
                      if result.baseline is not None else ""))
        return Table(header, rows, caption, numeric=tuple(range(1, len(header))))
    m = result.models[0]
    ce = None if result.baseline is m else result.corruption_errors(m)  # against itself: 100% everywhere
    header = ["corruption"] + [f"severity {s}" for s in result.severities] + ["mean"] + (["CE"] if ce is not None else [])
    rows = []
    for i, n in enumerate(result.names):
        label = n + (f" ({result.published_severity[n]})" if result.published_severity else "")
        rows.append([label] + [f"{a:.1%}" for a in m.accuracy[i]] + [f"{m.accuracy[i].mean():.1%}"]
                    + ([_pct(ce[i])] if ce is not None else []))
    caption = (f"{m.model}: accuracy under {result.suite} corruptions ({result.options.source}), first "
               f"{result.count} test images; clean {m.clean:.1%}"
               + (f"; CE against {result.baseline.model}, mCE {_pct(result.mce(m))}" if ce is not None else ""))
    return Table(header, rows, caption, numeric=tuple(range(1, len(header))))


def _pct(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.0%}"


def _sev(result: Result) -> str:
    return "published" if result.published_severity else ", ".join(str(s) for s in result.severities)


def summary(result: Result) -> str:
    parts = []
    for m in result.models:
        worst = int(np.argmin(m.accuracy.mean(1)))
        text = (f"{m.model}: {m.clean:.1%} clean, {m.mean:.1%} on average under the {len(result.names)} {result.suite} "
                f"corruptions (worst: {result.names[worst]}, {m.accuracy[worst].mean():.1%})")
        mce = result.mce(m)
        if mce is not None and m is not result.baseline:
            text += f", mCE {mce:.0%} of {result.baseline.model}'s (relative {_pct(result.mce(m, relative=True))})"
        parts.append(text)
    text = "; ".join(parts) + "."
    first = result.models[0]
    for m in result.models[1:]:
        gain = m.accuracy.mean(1) - first.accuracy.mean(1)
        best, worst = int(np.argmax(gain)), int(np.argmin(gain))
        text += (f" {m.model} against {first.model}: {100 * (m.mean - first.mean):+.1f} points on average "
                 f"({100 * (m.clean - first.clean):+.1f} clean); most on {result.names[best]} "
                 f"({100 * gain[best]:+.1f}), least on {result.names[worst]} ({100 * gain[worst]:+.1f}).")
    return text + f" Severities {_sev(result)}, first {result.count} test images, seed {result.options.seed}."
