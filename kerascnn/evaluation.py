"""Predictions, test accuracy and loss, per-class accuracy and the confusion matrix."""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

_LOGITS_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def logits_fn(model):
    """A compiled function images -> float32 logits for `model` (inference mode), made once per model."""
    import tensorflow as tf

    fn = _LOGITS_FNS.get(model)
    if fn is None:
        fn = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), reduce_retracing=True)
        _LOGITS_FNS[model] = fn
    return fn


def predict_logits(model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """images (N, 28, 28, 1) float32 in [0, 1] -> logits (N, 10) float32, in batches of `batch_size`."""
    fn = logits_fn(model)
    images = np.asarray(images, np.float32)
    if len(images) == 0:
        return np.zeros((0, 10), np.float32)
    return np.concatenate([fn(images[i:i + batch_size]).numpy() for i in range(0, len(images), batch_size)])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable): (N, 10) -> (N, 10) probabilities."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def predict_proba(model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """images (N, 28, 28, 1) -> class probabilities (N, 10) float64."""
    return softmax(predict_logits(model, images, batch_size))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-image cross-entropy (N,) of integer `labels` under `logits`, computed stably."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


@dataclass
class EvalResult:
    """How a model does on labelled images."""
    accuracy: float
    loss: float
    per_class_accuracy: np.ndarray  # (10,) accuracy on the images of each true class
    confusion: np.ndarray           # (10, 10) counts, rows = true class, columns = predicted
    predictions: np.ndarray         # (N,) predicted classes
    count: int

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "loss": self.loss, "count": self.count,
                "per_class_accuracy": {str(c): float(a) for c, a in enumerate(self.per_class_accuracy)},
                "confusion": self.confusion.tolist()}


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 10) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def evaluate(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> EvalResult:
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix of `model` on the images."""
    logits = predict_logits(model, images, batch_size)
    labels = np.asarray(labels, np.int64)
    predictions = logits.argmax(axis=1)
    confusion = confusion_matrix(labels, predictions)
    per_class = np.diag(confusion) / np.maximum(confusion.sum(axis=1), 1)
    return EvalResult(float((predictions == labels).mean()), float(cross_entropy(logits, labels).mean()),
                      per_class, confusion, predictions, len(labels))
