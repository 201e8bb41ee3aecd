"""Faster batch normalisation for training: Keras' BatchNormalization, same variables, same
arithmetic, computed by TensorFlow's fused kernels.

Keras 3's layer normalises with a dozen element-wise TensorFlow ops (a cast to float32, the moments,
the scale and shift, a cast back) and about twice as many in the backward pass, each a pass over the
(N, H, W, 32) map. `FusedBatchNormV3` does the forward pass in one kernel and `FusedBatchNormGradV3`
the backward pass in one, reading bfloat16 maps directly and computing in float32, as Keras does
after its cast. Measured (benchmarks/bench_train.py --batchnorm, batch 16, bf16): an epoch with
batch norm took 2.13x as long as one without through Keras' layer, 1.34x through this one (Intel);
1.98x and 1.39x on an AMD EPYC, with the training model also pooling before the ReLU (kerascnn.model.network).

Only the training model uses this layer: `kerascnn.training.fit` saves its weights into an ordinary
`keras.layers.BatchNormalization` network, so model.keras names no class of ours. The layer is
registered with Keras, so that the checkpoint of an unfinished run loads once this module is imported.
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="kerascnn")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization (axis -1, no mask, no renorm) through the fused kernels.

    Same results as Keras' layer up to float rounding: the map is normalised with the batch's mean
    and biased variance in training, with the moving statistics otherwise; the moving variance
    follows the biased batch variance, as Keras' does (the kernel returns the unbiased one, which is
    scaled back by (n - 1) / n). Only (N, H, W, C) maps take the fused kernels; anything else
    (features of rank 2, masks, renorm, other axes, synchronized replicas) goes through Keras' call.
    """

    def _fused(self, inputs, mask) -> bool:
        # Features after a Dense layer stay with Keras: as (N, 1, 1, C) maps, oneDNN's fused kernel
        # took 0.7 ms a step for fc1's 16 x 500, more than Keras' dozen small ops (measured).
        return (mask is None and not self.renorm and not self.synchronized and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.center and self.scale)

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = inputs if inputs.dtype in (tf.float32, tf.bfloat16, tf.float16) else tf.cast(inputs, tf.float32)
        gamma = tf.cast(self.gamma, tf.float32)
        beta = tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            none = tf.constant([], tf.float32)
            y, mean, unbiased, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=none, variance=none, epsilon=self.epsilon, is_training=True)
            count = tf.cast(tf.size(x) // x.shape[-1], tf.float32)
            variance = unbiased * tf.math.divide_no_nan(count - 1.0, count)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            y, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon, is_training=False)
        return tf.cast(y, self.compute_dtype)
