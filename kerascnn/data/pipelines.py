"""tf.data pipelines over in-memory arrays: unshuffled batches for evaluation, and training batches
reshuffled each epoch by a stateless seed (so a resumed run sees exactly the order of an unbroken one)."""
from __future__ import annotations

import numpy as np


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int):
    """An unshuffled tf.data pipeline of (images, labels) batches, for evaluation."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def shuffled_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, epoch_var,
                     noise_sd: float = 0.0):
    """Training batches, reshuffled each epoch by the stateless seed (seed, epoch_var); with noise_sd
    > 0, every pixel of every batch plus Gaussian noise of that deviation (unclipped), drawn from the
    stateless seed (seed, epoch, batch), so that a resumed run sees the same noise too.

    The permutation depends only on the seed and the epoch number read from `epoch_var` (a tf.Variable
    set before each epoch), so a run resumed at epoch k sees exactly the order an unbroken run would.
    The data stay in memory as tensors; every iteration gathers one batch and prefetches the next.
    """
    import tensorflow as tf

    n = len(images)
    x = tf.constant(images)
    y = tf.constant(labels)
    num_batches = -(-n // batch_size)

    def permutation(_):
        return tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch_var.read_value()]))

    def gather(i, idx):
        batch = tf.gather(x, idx)
        if noise_sd > 0:  # a Python branch: without noise the pipeline is what it always was
            key = tf.stack([tf.constant(seed, tf.int64) + 1, epoch_var.read_value() * num_batches + i])
            batch = batch + noise_sd * tf.random.stateless_normal(tf.shape(batch), key, dtype=batch.dtype)
        return batch, tf.gather(y, idx)

    return (tf.data.Dataset.from_tensors(0).map(permutation).unbatch()
            .batch(batch_size).enumerate()
            .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
            .apply(tf.data.experimental.assert_cardinality(num_batches))
            .prefetch(tf.data.AUTOTUNE))
