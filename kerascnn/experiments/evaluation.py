"""Evaluation: test accuracy and loss, per-class accuracy, the confusion matrix and a grid of
predictions, for any classifier on its task's test split."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EvalResult:
    """How a model does on labelled images."""
    accuracy: float
    loss: float
    per_class_accuracy: np.ndarray  # (K,) accuracy on the images of each true class
    confusion: np.ndarray           # (K, K) counts, rows = true class, columns = predicted
    predictions: np.ndarray         # (N,) predicted classes
    count: int
    class_names: tuple | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The class names, or the class numbers as text when the model came without names."""
        return self.class_names or tuple(str(k) for k in range(len(self.per_class_accuracy)))

    def to_dict(self) -> dict:
        names = self.names
        return {"accuracy": self.accuracy, "loss": self.loss, "count": self.count, "class_names": list(names),
                "per_class_accuracy": {names[c]: float(a) for c, a in enumerate(self.per_class_accuracy)},
                "confusion": self.confusion.tolist()}


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def evaluate(model, images: np.ndarray, labels: np.ndarray, batch_size: int | None = None,
             class_names: tuple | None = None) -> EvalResult:
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix of the logits model
    `model` on `images` (N, H, W, C) float32 in [0, 1] with integer `labels` (N,)."""
    from kerascnn.subject import cross_entropy, predict_logits

    logits = predict_logits(model, images, batch_size)
    labels = np.asarray(labels, np.int64)
    predictions = logits.argmax(axis=1)
    confusion = confusion_matrix(labels, predictions, logits.shape[1])
    per_class = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    return EvalResult(float((predictions == labels).mean()), float(cross_entropy(logits, labels).mean()),
                      per_class, confusion, predictions, len(labels), class_names)


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
    from kerascnn.document import Table

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
