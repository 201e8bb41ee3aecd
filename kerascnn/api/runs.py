"""Making and counting models: `kc.train`, `kc.summary`, `kc.compare`, `kc.export`, `kc.report`.

Training owns its folder (it resumes from it after an interruption): `kc.train(out=...)` trains in
place, as `kerascnn train` does, under the folder's lock; `kc.train()` without `out` trains in a
temporary folder and keeps the model in memory (`result.model`; `result.save(out)` writes the run's
files). `export` and `report` exist to write files and take `out`.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from kerascnn.api.calls import with_options
from kerascnn.api.inputs import ArrayTask, as_task, subject
from kerascnn.errors import BadValue
from kerascnn.training.config import TrainConfig

TRAIN_FIGURES = ("loss.png", "accuracy.png", "predictions.png", "confusion.png")


class TrainRun:
    """A finished training run: `.model` (float32 keras.Model), `.metrics` (metrics.json), `.history`
    (per epoch), `.steps` (per iteration), `.out_dir` (None when trained in memory)."""

    def __init__(self, result, task):
        self.raw, self.task = result, task
        self.model, self.metrics, self.history, self.steps = result.model, result.metrics, result.history, result.steps
        self.out_dir = result.out_dir

    def to_dict(self) -> dict:
        import json

        from kerascnn.outputs.store import dumps_json

        return json.loads(dumps_json(self.metrics))

    def table(self) -> str:
        m = self.metrics
        return (f"test accuracy {m['test_accuracy']:.2%} (loss {m['test_loss']:.4f}); {len(m['epoch_seconds'])} "
                f"epoch(s) in {m['train_seconds']:.0f} s, {m['images_per_second']:,.0f} images/s")

    def figures(self) -> dict:
        from kerascnn import plots

        images, labels = self.task.test()
        names, title = self.task.class_names, f"{self.model.name} on {self.task.name}"
        return {"loss.png": plots.loss_curves(self.steps, f"{title}: cross-entropy loss"),
                "accuracy.png": plots.accuracy_curves(self.steps, f"{title}: accuracy"),
                "predictions.png": plots.prediction_grid(images, labels, self.raw.test.predictions, class_names=names),
                "confusion.png": plots.confusion_figure(self.raw.test.confusion, class_names=names)}

    def save(self, out, force: bool = False) -> Path:
        """Writes the run's files (model.keras, history.csv, steps.csv, metrics.json, the figures) into
        `out`, as `kerascnn train` leaves them; a folder kerascnn did not make is refused unless `force`."""
        from kerascnn.outputs import folders, store
        from kerascnn.training.runs import HISTORY_FIELDS, STEP_FIELDS

        with folders.output_folder(out, "train", force=force) as tmp:
            store.save_model(self.model, tmp / "model.keras")
            store.write_csv(tmp / "history.csv", self.history, HISTORY_FIELDS)
            store.write_csv(tmp / "steps.csv", self.steps, STEP_FIELDS)
            store.write_json(tmp / "metrics.json", self.metrics)
            for name, fig in self.figures().items():
                store.save_figure(fig, tmp / name)
        return Path(out)

    def _repr_html_(self) -> str:
        from kerascnn.api.results import figures_html

        return f"<p><b>kerascnn train</b>: {self.table()}</p>" + figures_html(self.figures())


def train_config(data=None, recipe: str = "assignment", out=None, **fields) -> TrainConfig:
    """The run's TrainConfig: `recipe`'s values, `fields` over them, the folder named as `kerascnn
    train` names it (runs/cnn, runs/cnn_bn, runs/cnn_pgd, runs/cnn_smooth, runs/cnn_fast...)."""
    if isinstance(data, (str, os.PathLike)):
        task = as_task(data)
        fields |= {"dataset": task.dataset, "data_dir": task.data_dir}
    config = TrainConfig.from_recipe(recipe, out_dir=None if out is None else os.fspath(out), **fields)
    if out is None:
        suffix = (config.adversarial.attack if config.adversarial is not None else
                  "smooth" if config.noise_sd > 0 else None)
        if suffix:
            config.out_dir = f"{config.resolved_out_dir()}_{suffix}"
        if recipe != "assignment":
            config.out_dir = f"{config.resolved_out_dir()}_{recipe}"
    config.check()
    return config


@with_options(TrainConfig, exclude=("dataset", "data_dir", "out_dir"))
def train(data=None, *, out=None, recipe: str = "assignment", force: bool = False, class_names=None, callbacks=(),
          notify=None, progress: bool = True, **fields) -> TrainRun:
    """Trains the assignment's CNN (with batch norm: batchnorm=True) on `data` with Adam.

    Arguments:
        data: None (MNIST), a dataset name, a folder, ((x_train, y_train), (x_test, y_test)) arrays.
        out: a run folder to train in (resumable, as `kerascnn train --out`); None: in memory.
        recipe: "assignment" or another of kerascnn.training.recipes.RECIPES; the options below override it.
        callbacks: extra Keras callbacks. notify: a function given each line of news (None: silent).

    Returns:
        TrainRun: `.model`, `.metrics` (test_accuracy ...), `.history`; `.save(out)` writes the run's files.

    Example:
        >>> run = kc.train(((x, y), (x_test, y_test)), epochs=2)
    """
    from kerascnn.cpu import choose_kernels

    choose_kernels()
    arrays = data is not None and not isinstance(data, (str, os.PathLike))
    config = train_config(None if arrays else data, recipe, out, **fields)
    task = as_task(data, class_names) if arrays else config.task
    if arrays and isinstance(task, ArrayTask) and task.arrays().x_train is task.arrays().x_test:
        raise BadValue("data", "give ((x_train, y_train), (x_test, y_test)): training images apart from the test ones")
    if progress and notify is None and not callbacks:
        callbacks = (_tqdm_epochs(config.epochs),)
    elif notify is not None and not callbacks:
        from kerascnn.training.callbacks import epoch_lines

        callbacks = (epoch_lines(notify, config.epochs),)
    return run_config(config, task, in_memory=out is None, force=force, notify=notify, callbacks=callbacks)


def run_config(config: TrainConfig, task, *, in_memory: bool, force: bool = False, notify=None, callbacks=(),
               splits=None, starting=None) -> TrainRun:
    """Trains `config` on `task`: in a temporary folder (`in_memory`: the model is kept, the folder
    goes), or in its run folder under the folder's lock (resumable; the run's figures drawn beside it,
    the folder marked as a training folder). A foreign or unwritable folder is refused before any work;
    `starting()` is called once the folder is held, just before training."""
    from kerascnn.outputs import locks, store
    from kerascnn.training import fit as training
    from kerascnn.training import runs

    say = notify or (lambda line: None)
    if in_memory:
        splits = splits if splits is not None else task.splits(config.val_size, config.seed, config.subset)
        with tempfile.TemporaryDirectory(prefix="kerascnn-train-") as tmp:
            config = dataclasses.replace(config, out_dir=tmp)
            result = training.train(config, splits, verbose=0, notify=say, callbacks=tuple(callbacks), task=task)
        return TrainRun(dataclasses.replace(result, out_dir=None), task)
    folder = config.resolved_out_dir()
    runs.check_training_folder(folder, force=force)
    splits = splits if splits is not None else task.splits(config.val_size, config.seed, config.subset)
    with locks.FolderLock(folder):
        if starting is not None:
            starting()
        result = training.train(config, splits, verbose=0, notify=say, callbacks=tuple(callbacks), task=task)
        run = TrainRun(result, task)
        for name, fig in run.figures().items():
            store.save_figure(fig, folder / name)
        runs.mark_training_folder(folder)
    return run


def _tqdm_epochs(epochs: int):
    import keras
    from tqdm.auto import tqdm

    class Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs, desc="epochs", leave=False)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(1)
            self.bar.set_postfix(val_accuracy=f"{(logs or {}).get('val_accuracy', float('nan')):.4f}")

        def on_train_end(self, logs=None):
            self.bar.close()
    return Bar()


class Summary:
    """A network counted layer by layer: `.rows` (name, kind, output shape, params, units, MACs),
    `.total_params`, `.table()` (what `kerascnn summary` prints), `.to_dict()` (its --json)."""

    def __init__(self, model, counted):
        self.name, self.counted = model.name, counted
        self.input_shape, self.outputs = tuple(model.input_shape[1:]), model.output_shape[-1]

    def __getattr__(self, name):
        if name.startswith("_") or name == "counted":
            raise AttributeError(name)
        return getattr(self.counted, name)

    def to_dict(self) -> dict:
        return self.counted.to_dict()

    def table(self) -> str:
        t = self.counted
        header = f"{'layer':<14}{'kind':<11}{'output shape':>14}{'params':>11}{'units':>10}{'MACs':>13}"
        lines = [f"{self.name}: input {self.input_shape} -> {self.outputs} outputs", header, "-" * len(header)]
        for r in t.rows:
            shape = "x".join(str(d) for d in r.output_shape)
            lines.append(f"{r.name[:13]:<14}{r.kind[:10]:<11}{shape:>14}{r.params:>11,}{r.units:>10,}{r.macs:>13,}")
        lines += ["-" * len(header), f"{'total':<39}{t.total_params:>11,}{t.total_units:>10,}{t.total_macs:>13,}"]
        conv = [r.params for r in t.rows if r.kind == "conv"]
        dense = [r.params for r in t.rows if r.kind == "dense"]
        lines.append(f"convolution parameters {sum(conv):,} ({' + '.join(f'{p:,}' for p in conv) or '-'}); "
                     f"dense parameters {sum(dense):,} ({' + '.join(f'{p:,}' for p in dense) or '-'})")
        other = t.total_params - sum(conv) - sum(dense)
        if other:
            lines.append(f"other parameters {other:,} (batch norm: half of them moving statistics, not trained)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return f"<pre style='white-space: pre-wrap'>{html.escape(self.table())}</pre>"


def summary(model=None, data=None, *, batchnorm: bool = False) -> Summary:
    """What a network is made of, layer by layer: output shape, parameters, units, multiply-adds.

    Arguments:
        model: a keras.Model or a .keras file (None: the assignment's network, built for `data`).
        data: None (MNIST), a dataset name or a folder: the shape and classes the network is built for.
        batchnorm: count the batch-norm variant of the assignment's network.

    Returns:
        Summary: `.rows`, `.total_params`, `.table()`, `.to_dict()`; shown as the table in a notebook.

    Example:
        >>> kc.summary().total_params
    """
    from kerascnn.cpu import choose_kernels

    choose_kernels()
    from kerascnn.model.network import build_model, layer_table

    if model is not None:
        network = _load(model)
    elif data is None:  # the assignment's own shape: no need to read MNIST
        network = build_model(batchnorm)
    else:
        task = as_task(data)
        network = build_model(batchnorm, input_shape=task.input_shape, num_classes=task.num_classes)
    return Summary(network, layer_table(network))


def _load(model):
    from kerascnn.api.inputs import is_keras_model
    from kerascnn.model.subject import load_keras

    return model if is_keras_model(model) else load_keras(model)


def export(model=None, out=None, *, format: str = "savedmodel", data=None, input_range=None, preprocess=None,
           class_names=None):
    """Exports the model (its logits and probabilities from pixels in [0, 1]) to `out`, checked by
    the format's real consumer on 256 test images first: "savedmodel", "onnx" or "litert".

    Returns:
        kerascnn.exporting.exporter.ExportResult: `.path`, `.checks` (the consumers' differences).
    """
    import numpy as np

    from kerascnn.errors import UserError
    from kerascnn.exporting import exporter

    if out is None:
        raise BadValue("out", "give the folder (or file) to export to")
    s = subject(model, data, input_range=input_range, preprocess=preprocess, class_names=class_names)
    try:
        images, what = s.task.test()[0][:256], "test images"
    except UserError:
        images = np.random.default_rng(0).random((256,) + s.input_shape, dtype=np.float32)
        what = "random images"
    return exporter.export(s.logits_model, out, format=format, class_names=s.class_names, check_images=images,
                           images_kind=what)
