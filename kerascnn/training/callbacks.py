"""The Keras callbacks of a training run: the seeded shuffle, per-iteration rows with validation
points, the per-epoch checkpoint that makes a run resumable, a stop on a non-finite loss, and one
compact line per epoch for logs that are not a terminal.

Files are made in on_train_begin / on_epoch_end, never in __init__ (tf-explain's callbacks make
folders in __init__: avoided).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from kerascnn.data.pipelines import batches
from kerascnn.errors import UserError
from kerascnn.outputs import store
from kerascnn.training.keras_classes import StepRecorder
from kerascnn.training.runs import HISTORY_FIELDS, STEP_FIELDS


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: the run stops, and nothing is saved as its result."""

    def __init__(self, epoch: int, step: int, lr: float):
        super().__init__(f"training diverged: the loss is not finite at epoch {epoch}, step {step}; "
                         f"nothing was saved as the result (try a smaller lr than {lr:g})")


class StopOnNonFinite(keras.callbacks.Callback):
    """Keras' TerminateOnNaN, raising the project's error (with where it happened) instead of only
    stopping: a diverged run must not save a NaN model as if it had finished."""

    def __init__(self, recorder: StepRecorder, steps_per_epoch: int, lr: float):
        super().__init__()
        self.recorder = recorder
        self.steps_per_epoch = steps_per_epoch
        self.lr = lr

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            count, losses, _ = self.recorder.read()
            ring = [losses[i % self.recorder.capacity] for i in range(max(0, count - self.recorder.capacity), count)]
            first = next((k for k, v in enumerate(ring) if not math.isfinite(float(v))), len(ring) - 1)
            step = self.epoch * self.steps_per_epoch + max(0, count - len(ring)) + first + 1
            raise TrainingDiverged(self.epoch + 1, step, self.lr)


def epoch_lines(notify: Callable[[str], None], epochs: int, indent: str = "  "):
    """A callback that sends one compact line per epoch (loss, val accuracy, seconds) to `notify`:
    the progress of a run whose output is not a terminal (Keras' bar would write carriage returns)."""

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            notify(f"{indent}epoch {epoch + 1}/{epochs}: loss {logs.get('loss', math.nan):.4f}, "
                   f"accuracy {logs.get('accuracy', math.nan):.2%}, val accuracy {logs.get('val_accuracy', math.nan):.2%}, "
                   f"{time.perf_counter() - self.started:.0f} s")

    return EpochLine()


def make_evaluator(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000):
    """A compiled () -> (mean loss, accuracy) of `model` on fixed images, for use during training."""
    dataset = batches(images, labels, batch_size).cache()
    count = float(len(images))

    @tf.function
    def run():
        loss_sum = tf.constant(0.0)
        correct = tf.constant(0.0)
        for x, y in dataset:
            logits = tf.cast(model(x, training=False), tf.float32)
            loss_sum += tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
            correct += tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), y), tf.float32))
        return loss_sum / count, correct / count

    def evaluate() -> tuple[float, float]:
        loss, accuracy = run()
        return float(loss), float(accuracy)

    return evaluate


class ShuffleEpoch(keras.callbacks.Callback):
    """Tells the data pipeline which epoch starts, so that its shuffle is seeded by (seed, epoch)."""

    def __init__(self, epoch_var):
        super().__init__()
        self.epoch_var = epoch_var

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_var.assign(epoch)


class StepLogger(keras.callbacks.Callback):
    """Collects one row per iteration from the StepRecorder, adds validation points every
    `val_every` iterations and at each epoch's end, and times the epochs.

    Every validation point, the epoch's last included, is `evaluate()`: the plain cross-entropy and
    accuracy of the model in inference mode (no label smoothing in val_loss, whatever the recipe).
    It must come before the callbacks that read val_loss / val_accuracy in on_epoch_end."""

    def __init__(self, recorder: StepRecorder, steps_per_epoch: int, evaluate: Callable, val_every: int,
                 rows: list[dict], history: list[dict]):
        super().__init__()
        self.recorder = recorder
        self.steps_per_epoch = steps_per_epoch
        self.evaluate = evaluate
        self.val_every = val_every
        self.rows = rows
        self.history = history

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.read = 0
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        count, losses, accuracies = self.recorder.read()
        if count - self.read > self.recorder.capacity:
            raise RuntimeError("StepRecorder overflowed: capacity below steps_per_execution")
        base = self.epoch * self.steps_per_epoch
        for i in range(self.read, count):
            slot = i % self.recorder.capacity
            self.rows.append({"epoch": self.epoch, "step": base + i + 1, "loss": float(losses[slot]),
                              "accuracy": float(accuracies[slot]), "val_loss": None, "val_accuracy": None})
        crossed = self.val_every and (base + count) // self.val_every > (base + self.read) // self.val_every
        self.read = count
        if crossed and count < self.steps_per_epoch:  # the epoch's end gets its point in on_epoch_end
            self.rows[-1]["val_loss"], self.rows[-1]["val_accuracy"] = self.evaluate()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        # The epoch's validation point, by the evaluator already traced for the points inside the
        # epoch (Keras' own validation would trace a test function of its own: 0.15-0.3 s a run).
        # Written into `logs`, which Keras hands on to the callbacks after this one and to History.
        logs["val_loss"], logs["val_accuracy"] = self.evaluate()
        if self.rows and self.rows[-1]["epoch"] == epoch:
            self.rows[-1]["val_loss"] = logs.get("val_loss")
            self.rows[-1]["val_accuracy"] = logs.get("val_accuracy")
        self.history.append({"epoch": epoch + 1, "loss": logs.get("loss"), "accuracy": logs.get("accuracy"),
                             "val_loss": logs.get("val_loss"), "val_accuracy": logs.get("val_accuracy"),
                             "seconds": round(time.perf_counter() - self.started, 3)})


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch, into .resume/: history.csv and steps.csv, then the checkpoint, then the state
    that commits it (the CSVs keep rows of later epochs only until a resume reads them back up to the
    committed epoch). The run folder itself gets the CSVs when the run finishes (kerascnn.training.fit).

    Files are made in on_train_begin / on_epoch_end, never in __init__.
    """

    def __init__(self, out_dir: Path, resume_key: dict, rows: list[dict], history: list[dict]):
        super().__init__()
        self.out_dir = out_dir
        self.resume_dir = out_dir / ".resume"
        self.resume_key = resume_key
        self.rows = rows
        self.history = history

    def on_train_begin(self, logs=None):
        store.ensure_dir(self.resume_dir)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        store.write_csv(self.resume_dir / "history.csv", self.history, HISTORY_FIELDS)
        store.write_csv(self.resume_dir / "steps.csv", self.rows, STEP_FIELDS)
        # The state names its own checkpoint file: renaming state.json into place commits the epoch
        # in one step (a kill before it leaves the previous epoch's state and checkpoint intact).
        name = f"checkpoint-epoch{done}.keras"
        store.save_model(self.model, self.resume_dir / name)
        store.write_json(self.resume_dir / "state.json", {"key": self.resume_key, "epochs_done": done,
                                                          "checkpoint": name})
        for old in self.resume_dir.glob("checkpoint*.keras"):
            if old.name != name:
                old.unlink(missing_ok=True)


