"""How a model does on labelled images: accuracy, loss, per-class accuracy, the confusion matrix
(training's validation and the evaluation experiment both use it)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.model.predict import cross_entropy, predict_logits


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

    logits = predict_logits(model, images, batch_size)
    labels = np.asarray(labels, np.int64)
    predictions = logits.argmax(axis=1)
    confusion = confusion_matrix(labels, predictions, logits.shape[1])
    per_class = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    return EvalResult(float((predictions == labels).mean()), float(cross_entropy(logits, labels).mean()),
                      per_class, confusion, predictions, len(labels), class_names)
