"""The statistics of a seeds study (with vs without batch norm): per run its curves and numbers,
per variant the mean and min-max band over seeds, and a verdict in plain sentences.

Plain NumPy over the rows of steps.csv and metrics.json, testable on synthetic rows without training
(`aggregate`, `band`, `block_means`, `first_iteration_reaching`, `judge`).

The rule of the verdict: a difference of mean test accuracy counts only when it exceeds both the
spread between seeds (the larger min-max range of the two variants) and two standard errors of the
difference (the larger of the two is what the sentence calls "what seeds alone account for");
otherwise it is "no clear difference". Iterations to the threshold and epoch times count only when
the two variants' per-seed ranges do not overlap. With one seed per variant the spread is unknown and
the verdict says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kerascnn.outputs.store import column
from kerascnn.study.verdict import Verdict, judge

CURVE_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
#: How many points a training curve is reduced to (block means), per run.
TRAIN_POINTS = 100


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


def aggregate(runs: list[RunRecord], recipe: dict | None = None, threshold: float = 0.98,
              points: int = TRAIN_POINTS) -> CompareResult:
    """Runs of both variants -> CompareResult (summaries, bands and verdict). No training, no files."""
    plain = [r for r in runs if not r.batchnorm]
    bn = [r for r in runs if r.batchnorm]
    if not plain or not bn:
        raise ValueError("aggregate needs runs with and without batch norm")
    summary_plain, summary_bn = summarise(plain, threshold, points), summarise(bn, threshold, points)
    classes = runs[0].metrics.get("classes")
    chance = 1 / len(classes) if classes else None
    return CompareResult(list(runs), summary_plain, summary_bn, judge(summary_plain, summary_bn, threshold, chance),
                         dict(recipe or {}), threshold)


