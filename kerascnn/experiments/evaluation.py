"""Evaluation: test accuracy and loss, per-class accuracy, the confusion matrix and a grid of
predictions, for any classifier on its task's test split."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.model.evaluate import EvalResult, evaluate
from kerascnn.outputs.document import Table


# ---------------------------------------------------------------------------- the experiment
@dataclass
class Options:
    batch_size: int | None = None  # images per forward pass (memory, not results; None: as many as fit)


@dataclass
class Result:
    evaluation: EvalResult
    images: np.ndarray          # the test images, for the prediction grid (not in to_dict)
    labels: np.ndarray

    def to_dict(self) -> dict:
        return self.evaluation.to_dict()


def run(subject, options: Options, progress=None) -> Result:
    images, labels = subject.task.test()
    return Result(evaluate(subject.logits_model, images, labels, options.batch_size, subject.class_names),
                  images, labels)


def figures(result: Result) -> dict:
    from kerascnn import plots

    e = result.evaluation
    return {"confusion.png": plots.confusion_figure(e.confusion, class_names=e.class_names),
            "predictions.png": plots.prediction_grid(result.images, result.labels, e.predictions,
                                                     class_names=e.class_names)}


def table(result: Result):

    e = result.evaluation
    names = e.names
    rows = []
    for c in range(len(names)):
        row = e.confusion[c].copy()
        row[c] = 0
        confused = f"{names[int(row.argmax())]} ({row.max()})" if row.max() else "-"
        rows.append([names[c], int(e.confusion[c].sum()), f"{e.per_class_accuracy[c]:.2%}", confused])
    return Table(["class", "images", "accuracy", "most often mistaken for"], rows,
                 f"test accuracy {e.accuracy:.2%}, loss {e.loss:.4f} ({e.count:,} images)", numeric=(1, 2))


def summary(result: Result) -> str:
    e = result.evaluation
    worst = int(np.argmin(e.per_class_accuracy))
    names = e.names
    return (f"Test accuracy {e.accuracy:.2%} (loss {e.loss:.4f}) on {e.count:,} images; the hardest class is "
            f"{names[worst]} ({e.per_class_accuracy[worst]:.2%}).")
