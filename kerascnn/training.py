"""Training with `model.fit`, driven by Keras callbacks, resumable after an interruption.

`train(TrainConfig(...))` writes into `config.out_dir`:

    model.keras     the trained network (float32, uncompiled: any Keras 3 loads it)
    history.csv     per epoch: loss, accuracy, val_loss, val_accuracy
    steps.csv       per iteration: loss and accuracy of that batch; val_loss and val_accuracy
                    every `val_every` iterations and at the end of each epoch
    metrics.json    test accuracy and loss, the recipe, timings, versions
    .resume/        while a run is unfinished: the last finished epoch's checkpoint (with the
                    optimizer's state) and what is needed to go on from it; removed at the end

Speed (measured in benchmarks/bench_train.py): the data stay in memory as tensors; `steps_per_execution`
runs many steps per call into TensorFlow; the Adam update is one fused kernel per variable; batch norm
runs through TensorFlow's fused kernels (kerascnn.batchnorm); and on CPUs with bf16 instructions the
hidden layers compute in bfloat16 (variables, logits and loss float32).
"""
from __future__ import annotations

import contextlib
import math
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from kerascnn import BadValue, UserError, store
from kerascnn import devices as device_plan
from kerascnn.adversarial import AdversarialRecipe, classifier_of, wrap
from kerascnn.compiling import compile_for_training
from kerascnn.precision import PRECISIONS, dtype_policy, has_bf16_hardware, resolve_precision  # noqa: F401
from kerascnn.recipes import RECIPES
from kerascnn.runs import HISTORY_FIELDS, STEP_FIELDS, previous_rows, resume_state
from kerascnn.tasks import Splits, Task

# TensorFlow and Keras are imported by the functions that use them, so that TrainConfig (whose
# defaults the CLI reads while it parses options) costs nothing to import.

LR_SCHEDULES = ("cosine", "constant", "warmup_cosine")
#: Where `kerascnn train` writes by default (the shipped models in saved_models/ are only replaced
#: when --out names them).
RUNS = Path("runs")


@dataclass
class TrainConfig:
    """One training run. The defaults are the assignment's recipe, made fast: the one home of it
    (`kerascnn train` and `compare` read their option defaults from here)."""
    dataset: str = "mnist"           # a tensorflow-datasets name (see kerascnn.tasks)
    data_dir: str | None = None      # tfds, IDX or image folder; None: TFDS_DATA_DIR / tfds default
    batchnorm: bool = False          # BatchNormalization after conv1, conv2 and fc1
    epochs: int = 5                  # passes over the training images
    batch_size: int = 16             # images per step
    lr: float = 1e-3                 # Adam's learning rate (the peak, with a schedule)
    lr_schedule: str = "cosine"      # "cosine": decays to 0 over the run; "constant": lr throughout;
                                     # "warmup_cosine": rises linearly from 0 to lr, then a cosine to 0
    warmup: float = 0.1              # with "warmup_cosine": the fraction of the run's steps spent rising
    label_smoothing: float = 0.0     # cross-entropy against (1 - s) * one-hot + s / classes
    seed: int = 0                    # weights, validation hold-out and shuffling all follow it
    val_size: int | None = None      # training images held out for validation (None: 10%, at most 5,000)
    out_dir: str | None = None       # None: runs/cnn (runs/<dataset>_cnn for other datasets; _bn with batch norm)
    tensorboard: bool = False        # also write TensorBoard logs under out_dir/tensorboard
    precision: str = "auto"          # "bf16" (mixed_bfloat16), "fp32", or "auto": bf16 where the hardware has it
    steps_per_execution: int = 64    # steps per call into TensorFlow (callbacks see every 64th step)
    val_every: int = 512             # iterations between validation points in steps.csv (0: epoch ends only);
                                     # a point lands at the end of the first 64-step chunk past each multiple
    subset: int | None = None        # use only the first N training images (quick trials, tests)
    optimizer: str = "fused_adam"    # "adam": Keras' own Adam (same arithmetic, slower); for A/B timing
    jit_compile: bool = False        # XLA for the train step (slower on the CPUs measured; see benchmarks)
    fused_batchnorm: bool = True     # batch norm through TF's fused kernels (kerascnn.batchnorm); False: Keras'
                                     # own layer (same arithmetic, slower); for A/B timing
    adversarial: AdversarialRecipe | None = None  # train on attacked images (kerascnn.adversarial); None: clean
    devices: int | str = 1           # replicas of MirroredStrategy: N GPUs (or N logical CPUs), "all" GPUs;
                                     # batch_size is the global batch, split across them (kerascnn.devices)

    def check(self) -> None:
        """Raises BadValue for values no run can use (before any work starts)."""
        for name, low in (("epochs", 1), ("batch_size", 1), ("steps_per_execution", 1), ("val_every", 0)):
            if getattr(self, name) < low:
                raise BadValue(name, f"must be at least {low}, got {getattr(self, name)}")
        if self.val_size is not None and self.val_size < 1:
            raise BadValue("val_size", f"must be at least 1, got {self.val_size}")
        if self.subset is not None and self.subset < 2:
            raise BadValue("subset", f"must be at least 2, got {self.subset}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise BadValue("lr", f"must be a positive number, got {self.lr}")
        for name in ("warmup", "label_smoothing"):
            if not 0 <= getattr(self, name) < 1:
                raise BadValue(name, f"must be in [0, 1), got {getattr(self, name)}")
        for name, allowed in (("precision", PRECISIONS), ("lr_schedule", LR_SCHEDULES),
                              ("optimizer", ("fused_adam", "adam"))):
            if getattr(self, name) not in allowed:
                raise BadValue(name, f"must be one of {', '.join(allowed)}, got {getattr(self, name)}")
        if self.adversarial is not None:
            self.adversarial.check()
        device_plan.check(self.devices)

    @classmethod
    def from_recipe(cls, name: str = "assignment", **fields) -> TrainConfig:
        """The named recipe (RECIPES) with `fields` overriding its values."""
        if name not in RECIPES:
            raise BadValue("recipe", f"must be one of {', '.join(RECIPES)}, got {name}")
        return cls(**(RECIPES[name] | fields))

    @property
    def task(self) -> Task:
        return Task(self.dataset, self.data_dir)

    def resolved_out_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir else default_out_dir(self.task, self.batchnorm)

    def resume_key(self) -> dict:
        """What must be equal for an unfinished run to be continued (epochs may grow). Not `devices`:
        the replicas compute one device's steps (up to rounding), so a run may resume on others."""
        keys = ("dataset", "data_dir", "batchnorm", "batch_size", "lr", "lr_schedule", "seed", "val_size",
                "subset", "steps_per_execution", "optimizer", "label_smoothing")
        key = {k: getattr(self, k) for k in keys} | {"precision": resolve_precision(self.precision),
                                                     "adversarial": self.adversarial and self.adversarial.to_dict()}
        if self.lr_schedule != "constant":
            key["epochs"] = self.epochs  # the decay is spread over all epochs
        if self.lr_schedule == "warmup_cosine":
            key["warmup"] = self.warmup
        return key


@dataclass
class TrainResult:
    model: object                    # the trained keras.Model, float32
    history: list[dict]              # rows of history.csv
    steps: list[dict]                # rows of steps.csv
    metrics: dict                    # what metrics.json holds
    out_dir: Path
    resumed_from: int = 0            # epochs already done when this call started
    test: object = field(default=None, repr=False)  # experiments.evaluation.EvalResult on the test split


class TrainingInterrupted(UserError):
    """Training stopped (Ctrl-C) after `epochs_done` finished epochs; the same command resumes it."""

    exit_code = 130  # as a shell reports a process ended by Ctrl-C

    def __init__(self, out_dir: Path, epochs_done: int):
        self.epochs_done = epochs_done
        super().__init__(f"interrupted after {epochs_done} finished epoch(s); run the same command "
                         f"again to resume from {out_dir}")


# ---------------------------------------------------------------------------- the run
def train(config: TrainConfig, data: Splits | None = None, verbose: int | str = "auto",
          callbacks: tuple = (), notify: Callable[[str], None] = lambda line: None) -> TrainResult:
    """Trains (or resumes) the assignment's network for `config`'s task and writes its files into
    the output folder (see the module docstring).

    data: the task's splits already loaded (otherwise loaded from the config); callbacks: extra Keras
    callbacks; notify: receives one-line status messages (the library itself prints nothing).
    Raises TrainingInterrupted on Ctrl-C, after the last finished epoch has been checkpointed, and
    TrainingDiverged when the loss stops being finite (nothing is saved as the result then).
    """
    import keras
    import tensorflow as tf

    from kerascnn.callbacks import EpochCheckpoint, ShuffleEpoch, StepLogger, StopOnNonFinite, make_evaluator
    from kerascnn.experiments.evaluation import evaluate
    from kerascnn.model import build_model
    from kerascnn.pipelines import shuffled_batches

    config.check()
    replicas, strategy = device_plan.strategy(config.devices)  # before any TensorFlow work of ours
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    out_dir = store.ensure_dir(config.resolved_out_dir())
    precision = resolve_precision(config.precision)
    key = config.resume_key()
    if strategy:  # Keras 3 cannot loop steps in one call under a strategy (keras-team/keras#19246)
        config = replace(config, steps_per_execution=1)
    task = config.task
    if data is None:
        data = task.splits(config.val_size, config.seed, config.subset)
    shape, classes = task.input_shape, task.num_classes

    steps_per_epoch = -(-len(data.x_train) // config.batch_size)
    done, checkpoint = resume_state(out_dir, key, config.epochs)
    keras.utils.set_random_seed(config.seed)
    if done:
        from kerascnn.custom import custom_objects

        with scope:
            model = keras.models.load_model(checkpoint, custom_objects=custom_objects())
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
    train_ds = shuffled_batches(data.x_train, data.y_train, config.batch_size, config.seed, epoch_var)
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
        "label_smoothing": config.label_smoothing, "seed": config.seed,
        "val_size": int(len(data.x_val)), "train_images": int(len(data.x_train)), "subset": config.subset,
        "precision": precision, "devices": replicas, "optimizer": config.optimizer, "jit_compile": config.jit_compile,
        "fused_batchnorm": config.fused_batchnorm,
        "steps_per_execution": config.steps_per_execution, "steps_per_epoch": steps_per_epoch,
        "train_seconds": round(train_seconds, 3), "epoch_seconds": [row["seconds"] for row in history],
        "images_per_second": round(len(data.x_train) * len(history) / train_seconds, 1) if train_seconds else None,
        "adversarial": config.adversarial and config.adversarial.to_dict(), "resumed_from_epoch": done,
        "data_source": data.source,
        "tensorflow_version": tf.__version__, "keras_version": keras.__version__,
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


def default_out_dir(task: Task, batchnorm: bool) -> Path:
    """runs/cnn and runs/cnn_bn for MNIST; runs/<dataset>_cnn[_bn] for any other task."""
    name = "cnn_bn" if batchnorm else "cnn"
    return RUNS / (name if task.dataset == "mnist" and task.data_dir is None else f"{task.slug}_{name}")
