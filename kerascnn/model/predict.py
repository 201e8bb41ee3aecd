"""Numbers from a logits model: row-wise softmax and cross-entropy in NumPy, and batched logits
(one compiled function per model). The attacks and explanations take "a logits model" and need
nothing else of the Subject."""
from __future__ import annotations

import weakref

import numpy as np

from kerascnn.model.batching import batch_size as fitting

_LOGITS_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable): (N, K) -> (N, K) probabilities."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-image cross-entropy (N,) of integer `labels` under `logits` (N, K), computed stably."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def logits_fn(model):
    """A compiled function images -> float32 outputs of `model` (inference mode), made once per model."""
    import tensorflow as tf

    fn = _LOGITS_FNS.get(model)
    if fn is None:
        # One trace for every batch size: the signature leaves the batch dimension open.
        spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)
        fn = tf.function(lambda x: tf.cast(model(x, training=False), tf.float32), input_signature=[spec])
        _LOGITS_FNS[model] = fn
    return fn


def predict_logits(model, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """images (N, H, W, C) float32 in [0, 1] -> outputs (N, K) float32 of a logits model, batched
    (`batch_size` None: as many as fit kerascnn.model.batching's memory budget)."""

    fn = logits_fn(model)
    batch_size = batch_size or fitting(model)
    images = np.asarray(images, np.float32)
    if len(images) == 0:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    return np.concatenate([fn(images[i:i + batch_size]).numpy() for i in range(0, len(images), batch_size)])
