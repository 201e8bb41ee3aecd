"""The Keras classes a training checkpoint names: the fused Adam optimizer, the per-step recorder
metric and the label-smoothed loss. Registered with Keras (package "kerascnn"), so that an unfinished
run's checkpoint loads once this module is imported; the finished model.keras names none of them.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="kerascnn")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of logits against integer labels with label smoothing: the target is
    (1 - smoothing) * one-hot + smoothing / classes (Keras' sparse loss has no label_smoothing)."""

    def __init__(self, smoothing: float = 0.1, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        target = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(target, y_pred, from_logits=True, label_smoothing=self.smoothing)

    def get_config(self) -> dict:
        return super().get_config() | {"smoothing": self.smoothing}


@keras.saving.register_keras_serializable(package="kerascnn")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose update of each variable is one fused TensorFlow kernel.

    Same arithmetic as Keras' Adam (lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t);
    var -= lr_t * m / (sqrt(v) + epsilon)), done by `ResourceApplyAdam` in one pass over memory
    instead of a dozen element-wise ops. At batch 16 this is the difference between the update
    costing more than the convolutions and costing almost nothing. AMSGrad and sparse gradients
    fall back to Keras' own update.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype), use_locking=False)


@keras.saving.register_keras_serializable(package="kerascnn")
class StepRecorder(keras.metrics.Metric):
    """Keeps the loss and accuracy of each of the last `capacity` training batches.

    Keras reports running means over the epoch, and with `steps_per_execution` callbacks see only
    every n-th step; this metric records every step inside the compiled loop so that steps.csv has
    one row per iteration at no cost in speed. Its result (shown in the progress bar) is the loss of
    the latest batch.
    """

    def __init__(self, capacity: int = 64, name: str = "batch_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.capacity = int(capacity)
        # Under MirroredStrategy each replica records its share of the batch: read back, the slots are
        # the replicas' mean (the global batch's, for equal shares) and the count is one replica's.
        self.losses = self.add_variable((self.capacity,), "zeros", name="losses", aggregation="mean")
        self.accuracies = self.add_variable((self.capacity,), "zeros", name="accuracies", aggregation="mean")
        self.count = self.add_variable((), "zeros", dtype="int64", name="count", aggregation="only_first_replica")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = tf.reshape(tf.cast(y_true, tf.int64), [-1])
        logits = tf.cast(y_pred, tf.float32)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1), labels), tf.float32))
        slot = [[tf.math.floormod(self.count.value, self.capacity)]]
        self.losses.assign(tf.tensor_scatter_nd_update(self.losses.value, slot, [loss]))
        self.accuracies.assign(tf.tensor_scatter_nd_update(self.accuracies.value, slot, [accuracy]))
        self.count.assign_add(1)

    def result(self):
        last = tf.math.floormod(tf.maximum(self.count.value - 1, 0), self.capacity)
        return tf.gather(self.losses.value, last)

    def read(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(steps recorded since the last reset, losses ring, accuracies ring)."""
        return int(self.count.numpy()), self.losses.numpy(), self.accuracies.numpy()

    def get_config(self):
        return {"capacity": self.capacity, "name": self.name, "dtype": self.dtype}
