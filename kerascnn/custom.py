"""The project's own Keras classes that a training checkpoint may name: the fused Adam optimizer,
the per-step recorder metric, the adversarial trainer (kerascnn.adversarial) and the fused batch
norm (kerascnn.batchnorm). Loading any `.keras` file goes through `custom_objects()`, so that a
checkpoint of an unfinished run loads anywhere; the finished model.keras names none of them (an
adversarial run saves its plain classifier, a batch-norm run Keras' own BatchNormalization).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def custom_objects() -> dict:
    from kerascnn.batchnorm import FusedBatchNormalization

    return {"FusedBatchNormalization": FusedBatchNormalization, "FusedAdam": FusedAdam, "StepRecorder": StepRecorder,
            "AdversarialTrainer": AdversarialTrainer,
            "SmoothedSparseCrossentropy": SmoothedSparseCrossentropy}


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


# ---------------------------------------------------------------------------- optimizer and metric
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


# ---------------------------------------------------------------------------- adversarial training
@keras.saving.register_keras_serializable(package="kerascnn")
class AdversarialTrainer(keras.Model):
    """Trains `classifier` on PGD (or FGSM) images made inside each compiled training step
    (kerascnn.adversarial: the recipe and why). Calling it is calling the classifier, so validation
    and evaluation see clean images; its only weights are the classifier's.

    recipe: AdversarialRecipe.to_dict(); ramp_steps: training steps over which eps grows from 0;
    seed: with the optimizer's step count, seeds each batch's random start (a resumed run draws the
    starts an unbroken one would).
    """

    def __init__(self, classifier, recipe: dict, ramp_steps: int = 0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.recipe = dict(recipe)
        self.ramp_steps = int(ramp_steps)
        self.seed = int(seed)

    def call(self, x, training=False):
        return self.classifier(x, training=training)

    def current_eps(self):
        """eps of this training step: recipe eps, scaled by the ramp over the first ramp_steps steps."""
        eps = tf.constant(self.recipe["eps"], tf.float32)
        if not self.ramp_steps:
            return eps
        done = tf.cast(self.optimizer.iterations, tf.float32)
        return eps * tf.minimum(1.0, (done + 1.0) / float(self.ramp_steps))

    def attacked(self, x, y):
        from kerascnn.attacks.pgd import pgd_images

        eps = self.current_eps()
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)])
        images, _ = pgd_images(self.classifier, tf.cast(x, tf.float32), y, eps, eps * self.recipe["step_fraction"],
                               self.recipe["steps"], self.recipe["norm"], rand_init=True, seed=seed,
                               stop_when_fooled=False)
        return tf.stop_gradient(images)

    def train_step(self, data):
        x, y = data[0], data[1]
        return super().train_step((self.attacked(x, y), y))

    def get_config(self):
        return {"classifier": keras.saving.serialize_keras_object(self.classifier), "recipe": self.recipe,
                "ramp_steps": self.ramp_steps, "seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        classifier = keras.saving.deserialize_keras_object(config.pop("classifier"))
        return cls(classifier, **config)
