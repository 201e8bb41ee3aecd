"""With and without batch norm, over several seeds: does batch norm help this recipe?

`compare(CompareConfig(...))` trains the network with and without batch norm for each seed (through
`training.train`, one folder per run under OUT/runs/, so an interrupted study resumes) and returns a
`CompareResult`: per run the test accuracy, epoch times and the first iteration at which validation
accuracy reached the threshold (98%); per variant the curves as mean and min-max band over seeds,
mean and standard deviation of test accuracy, median epoch time; and a verdict in plain sentences.

The aggregation (`aggregate`, `band`, `block_means`, `first_iteration_reaching`, `judge`) is plain
NumPy over the rows of steps.csv and metrics.json, testable on synthetic rows without training.

The rule of the verdict: a difference of mean test accuracy counts only when it exceeds both the
spread between seeds (the larger min-max range of the two variants) and two standard errors of the
difference (the larger of the two is what the sentence calls "what seeds alone account for");
otherwise it is "no clear difference". Iterations to 98% and epoch times count only when
the two variants' per-seed ranges do not overlap. With one seed per variant the spread is unknown and
the verdict says so.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kerascnn import UserError
from kerascnn.store import column

VARIANTS = (("cnn", False), ("cnn_bn", True))
CURVE_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
#: How many points a training curve is reduced to (block means), per run.
TRAIN_POINTS = 100


@dataclass
class CompareConfig:
    """The study: both variants, `seeds` seeds each, the same recipe for all."""
    seeds: int = 3                   # seeds first_seed, first_seed + 1, ...
    first_seed: int = 0
    epochs: int = 5
    batch_size: int = 16
    lr: float = 1e-3
    lr_schedule: str = "cosine"      # passed to TrainConfig
    val_size: int = 5000
    val_every: int = 512             # iterations between validation points: the resolution of "first reaches 98%"
    subset: int | None = None        # only the first N training images (quick trials, tests)
    precision: str = "auto"
    steps_per_execution: int = 64
    threshold: float = 0.98          # the validation accuracy whose first crossing is counted
    data_dir: str | None = None
    out_dir: str = "compare"

    def check(self) -> None:
        if self.seeds < 1:
            raise UserError(f"--seeds must be at least 1, got {self.seeds}")
        if not 0 < self.threshold < 1:
            raise UserError(f"the accuracy threshold must be in (0, 1), got {self.threshold}")
        self.train_config(False, self.first_seed).check()

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def run_dir(self, name: str, seed: int) -> Path:
        return Path(self.out_dir) / "runs" / f"{name}_seed{seed}"

    def train_config(self, batchnorm: bool, seed: int):
        from kerascnn.training import TrainConfig

        return TrainConfig(batchnorm=batchnorm, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           lr_schedule=self.lr_schedule, seed=seed, val_size=self.val_size,
                           out_dir=os.fspath(self.run_dir("cnn_bn" if batchnorm else "cnn", seed)),
                           data_dir=self.data_dir, precision=self.precision,
                           steps_per_execution=self.steps_per_execution, val_every=self.val_every,
                           subset=self.subset)


# ---------------------------------------------------------------------------- results
@dataclass
class RunRecord:
    """One finished training run: the rows of its steps.csv and history.csv, and its metrics.json."""
    name: str                 # "cnn" or "cnn_bn"
    batchnorm: bool
    seed: int
    steps: list[dict]
    history: list[dict]
    metrics: dict
    out_dir: str = ""
    reused: bool = False      # loaded from a finished run folder instead of trained now

    @property
    def test_accuracy(self) -> float:
        return float(self.metrics["test_accuracy"])

    @property
    def epoch_seconds(self) -> list[float]:
        return [float(s) for s in self.metrics.get("epoch_seconds") or [r["seconds"] for r in self.history]]

    @property
    def median_epoch_seconds(self) -> float:
        seconds = self.epoch_seconds
        return float(np.median(seconds)) if seconds else math.nan

    def first_iteration(self, threshold: float) -> int | None:
        return first_iteration_reaching(self.steps, threshold)

    def summary(self, threshold: float) -> dict:
        return {"name": self.name, "batchnorm": self.batchnorm, "seed": self.seed,
                "test_accuracy": self.test_accuracy, "test_loss": self.metrics.get("test_loss"),
                "val_accuracy": self.metrics.get("val_accuracy"), "epoch_seconds": self.epoch_seconds,
                "median_epoch_seconds": self.median_epoch_seconds,
                "first_iteration_reaching_threshold": self.first_iteration(threshold),
                "iterations": len(self.steps), "out_dir": self.out_dir, "reused": self.reused}


@dataclass
class Band:
    """A curve over seeds: at each iteration the mean, smallest and largest value of the runs."""
    iteration: np.ndarray   # (P,) float
    mean: np.ndarray        # (P,)
    low: np.ndarray         # (P,)
    high: np.ndarray        # (P,)
    runs: int

    def to_dict(self) -> dict:
        return {"iteration": self.iteration.tolist(), "mean": self.mean.tolist(), "min": self.low.tolist(),
                "max": self.high.tolist(), "runs": self.runs}


@dataclass
class VariantSummary:
    """One variant (with or without batch norm) over its seeds."""
    name: str
    batchnorm: bool
    seeds: list[int]
    test_accuracies: list[float]
    iterations_to_threshold: list[int | None]   # per seed; None: never reached
    median_epoch_seconds: list[float]            # per seed
    curves: dict[str, Band] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.seeds)

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.test_accuracies))

    @property
    def accuracy_std(self) -> float:
        """Sample standard deviation over seeds (0 for one seed)."""
        return float(np.std(self.test_accuracies, ddof=1)) if self.count > 1 else 0.0

    @property
    def accuracy_range(self) -> float:
        return float(np.max(self.test_accuracies) - np.min(self.test_accuracies))

    @property
    def epoch_seconds(self) -> float:
        """The median over seeds of each run's median epoch time."""
        return float(np.median(self.median_epoch_seconds))

    @property
    def iterations_median(self) -> float | None:
        """Median over seeds of the first iteration at the threshold (a seed that never got there
        counts as infinitely late); None when the median itself never got there."""
        values = [math.inf if v is None else v for v in self.iterations_to_threshold]
        median = float(np.median(values))
        return None if math.isinf(median) else median

    def to_dict(self) -> dict:
        return {"name": self.name, "batchnorm": self.batchnorm, "seeds": self.seeds,
                "test_accuracies": self.test_accuracies, "test_accuracy_mean": self.accuracy_mean,
                "test_accuracy_std": self.accuracy_std, "test_accuracy_min": float(np.min(self.test_accuracies)),
                "test_accuracy_max": float(np.max(self.test_accuracies)),
                "iterations_to_threshold": self.iterations_to_threshold,
                "iterations_to_threshold_median": self.iterations_median,
                "median_epoch_seconds": self.median_epoch_seconds, "epoch_seconds": self.epoch_seconds,
                "curves": {k: band.to_dict() for k, band in self.curves.items()}}


@dataclass
class Verdict:
    """Batch norm against none. accuracy: better/worse/no clear difference/unknown; speed (iterations
    to the threshold): faster/slower/...; epoch_time: slower/faster/...; helped: yes/no/no clear difference."""
    accuracy: str
    speed: str
    epoch_time: str
    helped: str
    difference_points: float      # mean test accuracy with batch norm minus without, in points
    margin_points: float | None   # what a difference must exceed to count (None: unknown, one seed)
    sentence: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CompareResult:
    runs: list[RunRecord]
    plain: VariantSummary
    batchnorm: VariantSummary
    verdict: Verdict
    recipe: dict
    threshold: float

    def to_dict(self) -> dict:
        return {"recipe": self.recipe, "threshold": self.threshold,
                "runs": [run.summary(self.threshold) for run in self.runs],
                "variants": {v.name: v.to_dict() for v in (self.plain, self.batchnorm)},
                "verdict": self.verdict.to_dict()}

    def table(self) -> list[dict]:
        """One row per variant: what the command prints and the report shows."""
        rows = []
        for v in (self.plain, self.batchnorm):
            reached = sum(i is not None for i in v.iterations_to_threshold)
            rows.append({"variant": "with batch norm" if v.batchnorm else "without batch norm", "seeds": v.count,
                         "test_accuracy_mean": v.accuracy_mean, "test_accuracy_std": v.accuracy_std,
                         "test_accuracy_min": float(np.min(v.test_accuracies)),
                         "test_accuracy_max": float(np.max(v.test_accuracies)),
                         "epoch_seconds": v.epoch_seconds, "iterations_median": v.iterations_median,
                         "iterations": v.iterations_to_threshold, "reached": reached})
        return rows


# ---------------------------------------------------------------------------- pure aggregation
def first_iteration_reaching(steps: list[dict], threshold: float = 0.98, key: str = "val_accuracy") -> int | None:
    """The first iteration whose `key` (a validation point of steps.csv) is >= threshold; None if none is."""
    for row in steps:
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)) and value >= threshold:
            return int(row["step"])
    return None


def block_means(iterations: np.ndarray, values: np.ndarray, points: int = TRAIN_POINTS
                ) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive blocks of about len/points iterations -> (block centre iterations, block means).

    One batch of 16 is too noisy to read; a block mean keeps every batch's weight (unlike a subsample)
    and shrinks a 17,000-iteration curve to `points` numbers. A last partial block is dropped.
    """
    iterations = np.asarray(iterations, np.float64)
    values = np.asarray(values, np.float64)
    size = max(1, len(values) // max(1, points))
    blocks = len(values) // size
    if blocks == 0:
        return np.zeros(0), np.zeros(0)
    x = iterations[:blocks * size].reshape(blocks, size).mean(axis=1)
    y = values[:blocks * size].reshape(blocks, size).mean(axis=1)
    return x, y


def band(curves: list[tuple[np.ndarray, np.ndarray]]) -> Band:
    """Mean, min and max over runs of curves (iterations, values), at the iterations all runs share.

    Runs of one recipe share their iterations (same data size, batch and validation schedule); an
    iteration missing from any run (or NaN there) is left out rather than guessed.
    """
    if not curves:
        raise ValueError("band of no curves")
    common = None
    for x, y in curves:
        x = np.asarray(x, np.float64)[~np.isnan(np.asarray(y, np.float64))]
        common = x if common is None else np.intersect1d(common, x)
    stack = []
    for x, y in curves:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        keep = ~np.isnan(y)
        lookup = dict(zip(x[keep].tolist(), y[keep].tolist()))
        stack.append([lookup[i] for i in common.tolist()])
    values = np.asarray(stack, np.float64).reshape(len(curves), len(common))
    return Band(np.asarray(common, np.float64), values.mean(axis=0), values.min(axis=0), values.max(axis=0),
                len(curves))


def curve_bands(runs: list[RunRecord], points: int = TRAIN_POINTS) -> dict[str, Band]:
    """The four bands of a variant: training loss and accuracy (block means), validation loss and accuracy."""
    out = {}
    for key in CURVE_KEYS:
        curves = []
        for run in runs:
            step = column(run.steps, "step")
            values = column(run.steps, key)
            if key.startswith("val_"):
                keep = ~np.isnan(values)
                curves.append((step[keep], values[keep]))
            else:
                curves.append(block_means(step, values, points))
        out[key] = band(curves)
    return out


def summarise(runs: list[RunRecord], threshold: float = 0.98, points: int = TRAIN_POINTS) -> VariantSummary:
    """The runs of one variant (all with or all without batch norm), in seed order."""
    if not runs or len({r.batchnorm for r in runs}) != 1:
        raise ValueError("summarise takes the runs of one variant")
    runs = sorted(runs, key=lambda r: r.seed)
    return VariantSummary(runs[0].name, runs[0].batchnorm, [r.seed for r in runs],
                          [r.test_accuracy for r in runs], [r.first_iteration(threshold) for r in runs],
                          [r.median_epoch_seconds for r in runs], curve_bands(runs, points))


def _ranges_apart(a: list[float], b: list[float]) -> int:
    """-1 when every value of a is below every value of b, +1 when above, 0 when the ranges overlap."""
    if max(a) < min(b):
        return -1
    if min(a) > max(b):
        return 1
    return 0


def judge(plain: VariantSummary, bn: VariantSummary, threshold: float = 0.98) -> Verdict:
    """Whether batch norm helped, from the numbers alone (see the module docstring for the rule)."""
    diff = bn.accuracy_mean - plain.accuracy_mean
    known = plain.count > 1 and bn.count > 1
    if known:
        standard_error = math.sqrt(plain.accuracy_std ** 2 / plain.count + bn.accuracy_std ** 2 / bn.count)
        margin = max(plain.accuracy_range, bn.accuracy_range, 2 * standard_error)
        accuracy = "no clear difference" if abs(diff) <= margin else ("better" if diff > 0 else "worse")
    else:
        margin, accuracy = None, "unknown"

    inf = [math.inf if v is None else v for v in plain.iterations_to_threshold]
    inf_bn = [math.inf if v is None else v for v in bn.iterations_to_threshold]
    if not known or (all(math.isinf(v) for v in inf) and all(math.isinf(v) for v in inf_bn)):
        speed = "unknown"
    else:
        speed = {-1: "faster", 1: "slower", 0: "no clear difference"}[_ranges_apart(inf_bn, inf)]
    if not known:
        epoch_time = "unknown"
    else:
        epoch_time = {-1: "faster", 1: "slower", 0: "no clear difference"}[
            _ranges_apart(bn.median_epoch_seconds, plain.median_epoch_seconds)]

    if accuracy == "better" or (accuracy == "no clear difference" and speed == "faster"):
        helped = "yes"
    elif accuracy == "worse" or (accuracy == "no clear difference" and speed == "slower"):
        helped = "no"
    else:
        helped = "no clear difference"
    sentence = _sentence(plain, bn, diff, margin, accuracy, speed, epoch_time, helped, threshold)
    return Verdict(accuracy, speed, epoch_time, helped, 100 * diff, None if margin is None else 100 * margin,
                   sentence)


def _acc(v: VariantSummary) -> str:
    return f"{v.accuracy_mean:.2%}" + (f" ± {100 * v.accuracy_std:.2f}" if v.count > 1 else "")


def _iterations(v: VariantSummary) -> str:
    median = v.iterations_median
    return "never" if median is None else f"{median:,.0f}"


def _sentence(plain, bn, diff, margin, accuracy, speed, epoch_time, helped, threshold) -> str:
    n = f"{bn.count} seed{'s' if bn.count != 1 else ''}"
    accuracies = f"test accuracy {_acc(bn)} with it against {_acc(plain)} without ({100 * diff:+.2f} points"
    if accuracy == "unknown":
        head = (f"With one seed per variant the spread between seeds is unknown, so this cannot tell whether "
                f"batch norm helped: {accuracies}; run at least two seeds.")
    elif accuracy == "no clear difference":
        lead = {"yes": "Batch norm helped only in speed",
                "no": "Batch norm did not help", "no clear difference": "No clear difference from batch norm"}[helped]
        head = f"{lead} over {n}: {accuracies}; seeds alone account for differences up to {100 * margin:.2f} points)."
    else:
        lead = "Batch norm helped" if accuracy == "better" else "Batch norm hurt"
        head = f"{lead} over {n}: {accuracies}, more than the {100 * margin:.2f} points seeds alone account for)."
    to = f"{threshold:.0%} validation accuracy"
    medians = f"median iteration {_iterations(bn)} against {_iterations(plain)}"
    speed_text = {
        "faster": f"It reached {to} sooner for every seed ({medians})",
        "slower": f"It reached {to} later for every seed ({medians})",
        "no clear difference": f"It reached {to} at about the same point ({medians}; the seeds overlap)",
        "unknown": f"Median iteration to reach {to}: {_iterations(bn)} with it, {_iterations(plain)} without",
    }[speed]
    ratio = bn.epoch_seconds / plain.epoch_seconds if plain.epoch_seconds > 0 else math.nan
    seconds = f"{bn.epoch_seconds:.1f} s against {plain.epoch_seconds:.1f} s"
    time_text = {
        "slower": f"each epoch took {ratio:.2f}x as long ({seconds})",
        "faster": f"each epoch took {ratio:.2f}x as long ({seconds})",
        "no clear difference": f"epoch times overlapped ({seconds})",
        "unknown": f"an epoch took {seconds}",
    }[epoch_time]
    return f"{head} {speed_text}, and {time_text}."


def aggregate(runs: list[RunRecord], recipe: dict | None = None, threshold: float = 0.98,
              points: int = TRAIN_POINTS) -> CompareResult:
    """Runs of both variants -> CompareResult (summaries, bands and verdict). No training, no files."""
    plain = [r for r in runs if not r.batchnorm]
    bn = [r for r in runs if r.batchnorm]
    if not plain or not bn:
        raise ValueError("aggregate needs runs with and without batch norm")
    summary_plain, summary_bn = summarise(plain, threshold, points), summarise(bn, threshold, points)
    return CompareResult(list(runs), summary_plain, summary_bn, judge(summary_plain, summary_bn, threshold),
                         dict(recipe or {}), threshold)


# ---------------------------------------------------------------------------- running the study
def _recipe_key(train_config) -> dict:
    """What a finished run folder must have been trained with to be reused (everything but its place)."""
    from kerascnn.training import resolve_precision

    key = asdict(train_config)
    key.pop("out_dir")
    key["precision"] = resolve_precision(train_config.precision)
    return key


def load_finished(train_config) -> RunRecord | None:
    """The finished run in train_config.out_dir when it was trained with the same recipe, else None."""
    from kerascnn import store

    out = Path(train_config.out_dir)
    try:
        recipe = json.loads((out / "recipe.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
        steps = store.read_csv(out / "steps.csv")
        history = store.read_csv(out / "history.csv")
    except (OSError, ValueError):
        return None
    if recipe != json.loads(json.dumps(_recipe_key(train_config))) or not steps or not history:
        return None
    if metrics.get("batchnorm") != train_config.batchnorm or metrics.get("seed") != train_config.seed:
        return None
    name = "cnn_bn" if train_config.batchnorm else "cnn"
    return RunRecord(name, train_config.batchnorm, train_config.seed, steps, history, metrics, os.fspath(out), True)


def epoch_lines(notify: Callable[[str], None], epochs: int):
    """A Keras callback that sends one compact line per epoch (loss, val accuracy, seconds) to `notify`."""
    import keras

    class EpochLine(keras.callbacks.Callback):
        """One compact line per epoch, through `notify`."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            notify(f"    epoch {epoch + 1}/{epochs}: loss {logs.get('loss', math.nan):.4f}, "
                   f"val accuracy {logs.get('val_accuracy', math.nan):.2%}, "
                   f"{time.perf_counter() - self.started:.0f} s")

    return EpochLine()


def compare(config: CompareConfig, progress: Callable[[str], None] = lambda line: None,
            verbose: int | str = 0) -> CompareResult:
    """Trains (or reuses) both variants for every seed and aggregates them.

    progress: receives one line per run and, with verbose=0, one per epoch. verbose: passed to Keras
    (1: its progress bar). A run folder under OUT/runs/ that holds a finished run of the same recipe
    is loaded instead of retrained; an unfinished one resumes (see training.train).
    Raises training.TrainingInterrupted on Ctrl-C (the same call then resumes).
    """
    from kerascnn import data as data_lib, store, training

    config.check()
    store.ensure_dir(config.out_dir)
    runs = []
    total = 2 * config.seeds
    number = 0
    for seed in config.seed_list:
        data = None
        for name, batchnorm in VARIANTS:
            number += 1
            train_config = config.train_config(batchnorm, seed)
            label = f"run {number}/{total}: {name} seed {seed}"
            record = load_finished(train_config)
            if record is not None:
                progress(f"{label}: already done in {record.out_dir} "
                         f"(test accuracy {record.test_accuracy:.2%}), reused")
                runs.append(record)
                continue
            if data is None:
                data = data_lib.load_mnist(config.data_dir, config.val_size, seed, config.subset)
            progress(f"{label}: training {config.epochs} epoch(s) -> {train_config.out_dir}")
            out = store.ensure_dir(train_config.out_dir)
            (out / "recipe.json").unlink(missing_ok=True)  # written again only once this run has finished
            extra = (epoch_lines(progress, config.epochs),) if verbose == 0 else ()
            result = training.train(train_config, data, verbose=verbose, callbacks=extra,
                                    notify=lambda line, label=label: progress(f"{label}: {line}"))
            store.write_json(out / "recipe.json", _recipe_key(train_config))
            record = RunRecord(name, batchnorm, seed, result.steps, result.history, result.metrics, os.fspath(out))
            progress(f"{label}: test accuracy {record.test_accuracy:.2%}, "
                     f"{sum(record.epoch_seconds):.0f} s")
            runs.append(record)
    recipe = asdict(config)
    return aggregate(runs, recipe, config.threshold)


def format_table(result: CompareResult) -> str:
    """The per-variant table as aligned text."""
    to = f"iterations to {result.threshold:.0%} val"
    header = (f"{'':<20}{'seeds':>6}  {'test accuracy':>16}  {'min - max':>15}  {'epoch time':>10}  "
              f"{to + ' (median; per seed)'}")
    lines = [header, "-" * len(header)]
    for row in result.table():
        std = f" ± {100 * row['test_accuracy_std']:.2f}" if row["seeds"] > 1 else ""
        median = "never" if row["iterations_median"] is None else f"{row['iterations_median']:,.0f}"
        per_seed = ", ".join("never" if i is None else f"{i:,}" for i in row["iterations"])
        lines.append(f"{row['variant']:<20}{row['seeds']:>6}  {row['test_accuracy_mean']:>10.2%}{std:<6}  "
                     f"{100 * row['test_accuracy_min']:>6.2f} - {100 * row['test_accuracy_max']:<6.2f}  "
                     f"{row['epoch_seconds']:>8.1f} s  {median} ({per_seed})")
    return "\n".join(lines)


FIGURES = ("curves_loss.png", "curves_accuracy.png", "test_accuracy.png")


def save(result: CompareResult, out_dir: str | os.PathLike) -> list[Path]:
    """Writes compare.json and the figures (curves_loss.png, curves_accuracy.png, test_accuracy.png)."""
    from kerascnn import plots, store

    out = store.ensure_dir(out_dir)
    written = [store.write_json(out / "compare.json", result.to_dict())]
    figures = {"curves_loss.png": plots.band_curves(result, "loss"),
               "curves_accuracy.png": plots.band_curves(result, "accuracy"),
               "test_accuracy.png": plots.seed_accuracies(result)}
    written += [store.save_figure(fig, out / name) for name, fig in figures.items()]
    return written
