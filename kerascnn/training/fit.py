"""Training with `model.fit`, driven by Keras callbacks, resumable after an interruption.

`train(TrainConfig(...))` writes into `config.out_dir`:

    model.keras     the trained network (float32, uncompiled: any Keras 3 loads it)
    history.csv     per epoch: loss, accuracy, val_loss, val_accuracy
    steps.csv       per iteration: loss and accuracy of that batch; val_loss and val_accuracy
                    every `val_every` iterations and at the end of each epoch
    metrics.json    test accuracy and loss, the recipe, timings, versions, the CPU and its kernels
    .resume/        while a run is unfinished: the last finished epoch's checkpoint (with the
                    optimizer's state) and what is needed to go on from it; removed at the end

Speed (measured in benchmarks/bench_train.py): the data stay in memory as tensors; `steps_per_execution`
runs many steps per call into TensorFlow; the Adam update is one fused kernel per variable; batch norm
runs through TensorFlow's fused kernels (kerascnn.model.batchnorm); and on CPUs with bf16 instructions the
hidden layers compute in bfloat16 (variables, logits and loss float32).
"""
from __future__ import annotations

import contextlib
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from kerascnn import __version__
from kerascnn.cpu import choose_kernels
from kerascnn.data.pipelines import shuffled_batches
from kerascnn.data.tasks import Splits
from kerascnn.errors import UserError
from kerascnn.model.evaluate import evaluate
from kerascnn.model.network import build_model
from kerascnn.outputs import store
from kerascnn.training import devices as device_plan
from kerascnn.training.adversarial import classifier_of, wrap
from kerascnn.training.compiling import compile_for_training
from kerascnn.training.config import TrainConfig, TrainResult
from kerascnn.training.precision import PRECISIONS, dtype_policy, has_bf16_hardware, resolve_precision  # noqa: F401
from kerascnn.training.runs import HISTORY_FIELDS, STEP_FIELDS, previous_rows, resume_state

# TensorFlow and Keras are imported by the functions that use them, so that TrainConfig (whose
# defaults the CLI reads while it parses options) costs nothing to import.


class TrainingInterrupted(UserError):
    """Training stopped (Ctrl-C) after `epochs_done` finished epochs; the same command resumes it."""

    exit_code = 130  # as a shell reports a process ended by Ctrl-C

    def __init__(self, out_dir: Path, epochs_done: int):
        self.epochs_done = epochs_done
        super().__init__(f"interrupted after {epochs_done} finished epoch(s); run the same command "
                         f"again to resume from {out_dir}")


# ---------------------------------------------------------------------------- the run
def train(config: TrainConfig, data: Splits | None = None, verbose: int | str = "auto",
          callbacks: tuple = (), notify: Callable[[str], None] = lambda line: None, task=None) -> TrainResult:
    """Trains (or resumes) the assignment's network for `config`'s task and writes its files into
    the output folder (see the module docstring).

    data: the task's splits already loaded (otherwise loaded from the config); callbacks: extra Keras
    callbacks; notify: receives one-line status messages (the library itself prints nothing).
    Raises TrainingInterrupted on Ctrl-C, after the last finished epoch has been checkpointed, and
    TrainingDiverged when the loss stops being finite (nothing is saved as the result then).
    """
    cpu = choose_kernels()  # before TensorFlow starts, if it has not (the CLI and workers chose already)
    import keras
    import tensorflow as tf

    from kerascnn.training.callbacks import EpochCheckpoint, ShuffleEpoch, StepLogger, StopOnNonFinite, make_evaluator

    config.check()
    replicas, strategy = device_plan.strategy(config.devices)  # before any TensorFlow work of ours
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    out_dir = store.ensure_dir(config.resolved_out_dir())
    precision = resolve_precision(config.precision)
    key = config.resume_key()
    if strategy:  # Keras 3 cannot loop steps in one call under a strategy (keras-team/keras#19246)
        config = replace(config, steps_per_execution=1)
    task = task if task is not None else config.task  # the Python API's arrays come as their own Task
    if data is None:
        data = task.splits(config.val_size, config.seed, config.subset)
    shape, classes = task.input_shape, task.num_classes

    steps_per_epoch = -(-len(data.x_train) // config.batch_size)
    done, checkpoint = resume_state(out_dir, key, config.epochs)
    keras.utils.set_random_seed(config.seed)
    if done:
        # Keras' registration finds the classes a checkpoint names once their modules are imported.
        import kerascnn.model.batchnorm  # noqa: F401
        import kerascnn.training.adversarial_trainer  # noqa: F401
        import kerascnn.training.keras_classes  # noqa: F401

        with scope:
            model = keras.models.load_model(checkpoint)
            recorder = compile_for_training(model, config, steps_per_epoch, optimizer=model.optimizer)
        history, rows = previous_rows(out_dir, done)
        notify(f"resuming from epoch {done} of {config.epochs} (checkpoint in {out_dir / '.resume'})")
    else:
        with scope:
            # under a strategy, batch statistics of the global batch, as on one device
            classifier = build_model(config.batchnorm, dtype_policy(precision), shape, classes,
                                     fused_batchnorm=config.fused_batchnorm, synchronized=strategy is not None)
            model = wrap(classifier, config.adversarial, steps_per_epoch, config.seed)
            recorder = compile_for_training(model, config, steps_per_epoch)
        history, rows = [], []

    epoch_var = tf.Variable(done, dtype=tf.int64, trainable=False)
    train_ds = shuffled_batches(data.x_train, data.y_train, config.batch_size, config.seed, epoch_var,
                                config.noise_sd)
    logger = StepLogger(recorder, steps_per_epoch, make_evaluator(model, data.x_val, data.y_val),
                        config.val_every, rows, history)
    all_callbacks = [ShuffleEpoch(epoch_var), StopOnNonFinite(recorder, steps_per_epoch, config.lr), logger,
                     EpochCheckpoint(out_dir, key, rows, history)]
    if config.tensorboard:
        all_callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / "tensorboard"), update_freq="epoch"))
    all_callbacks.extend(callbacks)

    try:
        model.fit(train_ds, epochs=config.epochs, initial_epoch=done, shuffle=False,
                  callbacks=all_callbacks, verbose=verbose)
    except KeyboardInterrupt:
        raise TrainingInterrupted(out_dir, len(history)) from None
    finally:
        _remove_uncommitted(out_dir / ".resume")  # a run that failed before its first epoch leaves nothing

    final = build_model(config.batchnorm, None, shape, classes)  # float32, uncompiled: what experiments use
    final.set_weights(classifier_of(model).get_weights())
    test = evaluate(final, data.x_test, data.y_test, class_names=task.class_names)
    if not math.isfinite(test.loss):
        raise UserError(f"training ended with a model whose test loss is {test.loss}; nothing was saved "
                        f"(try a smaller lr than {config.lr:g})")
    train_seconds = sum(row["seconds"] for row in history)
    metrics = {
        "test_accuracy": test.accuracy, "test_loss": test.loss,
        "val_accuracy": history[-1]["val_accuracy"], "val_loss": history[-1]["val_loss"],
        "dataset": task.name, "input_shape": list(shape), "classes": list(task.class_names),
        # the images it was trained on: the task's pixels as float32 in [0, 1] (uint8 sources divided by 255)
        "input_range": [0.0, 1.0],
        "params": int(final.count_params()), "epochs": config.epochs, "batch_size": config.batch_size,
        "batchnorm": config.batchnorm, "lr": config.lr, "lr_schedule": config.lr_schedule, "warmup": config.warmup,
        "label_smoothing": config.label_smoothing, "noise_sd": config.noise_sd, "seed": config.seed,
        "val_size": int(len(data.x_val)), "train_images": int(len(data.x_train)), "subset": config.subset,
        "precision": precision, "devices": replicas, "optimizer": config.optimizer, "jit_compile": config.jit_compile,
        "fused_batchnorm": config.fused_batchnorm,
        "steps_per_execution": config.steps_per_execution, "steps_per_epoch": steps_per_epoch,
        "train_seconds": round(train_seconds, 3), "epoch_seconds": [row["seconds"] for row in history],
        "images_per_second": round(len(data.x_train) * len(history) / train_seconds, 1) if train_seconds else None,
        "adversarial": config.adversarial and config.adversarial.to_dict(), "resumed_from_epoch": done,
        "data_source": data.source,
        "kerascnn_version": __version__, "tensorflow_version": tf.__version__, "keras_version": keras.__version__,
        "cpu": cpu.to_dict(),  # the CPU and its kernels, as chosen when the process started (kerascnn.cpu)
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    store.write_csv(out_dir / "history.csv", history, HISTORY_FIELDS)
    store.write_csv(out_dir / "steps.csv", rows, STEP_FIELDS)
    store.save_model(final, out_dir / "model.keras")
    store.write_json(out_dir / "metrics.json", metrics)
    shutil.rmtree(out_dir / ".resume", ignore_errors=True)
    return TrainResult(final, history, rows, metrics, out_dir, done, test)


def _remove_uncommitted(folder: Path) -> None:
    """Removes .resume/ unless it commits an epoch to resume from (its state.json): what a run that
    failed before its first checkpoint wrote there (the CSVs, a half-saved checkpoint) goes with it."""
    if folder.is_dir() and not (folder / "state.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)


