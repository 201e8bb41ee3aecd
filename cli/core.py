"""The core commands: train, summary, evaluate, export."""
from __future__ import annotations

import os
from pathlib import Path

import click

from cli.common import data_dir_option, echo_json, guarded, model_option

TRAIN_FIGURES = ("loss.png", "accuracy.png", "predictions.png", "confusion.png")


def write_run_figures(result, images, labels) -> list[Path]:
    """Draws and saves the standard figures of a finished run into its folder."""
    from kerascnn import plots, store

    out = result.out_dir
    figures = {
        "loss.png": plots.loss_curves(result.steps, f"{result.model.name}: cross-entropy loss"),
        "accuracy.png": plots.accuracy_curves(result.steps, f"{result.model.name}: accuracy"),
        "predictions.png": plots.prediction_grid(images, labels, result.test.predictions),
        "confusion.png": plots.confusion_figure(result.test.confusion),
    }
    return [store.save_figure(fig, out / name) for name, fig in figures.items()]


@click.command()
@click.option("--batchnorm/--no-batchnorm", default=False, show_default=True,
              help="Insert batch normalisation after conv1, conv2 and fc1 (before their ReLU).")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam's learning rate (the starting peak with --lr-schedule cosine).")
@click.option("--lr-schedule", type=click.Choice(["cosine", "constant"]), default="cosine", show_default=True,
              help="cosine: decay from --lr to 0 over the run (+0.35 points of test accuracy over 3 seeds); "
                   "constant: the assignment's fixed rate.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the weights, the validation hold-out and the shuffling.")
@click.option("--val-size", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Training images held out for validation (the test split is never used to choose).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder. Default: saved_models/cnn, or saved_models/cnn_bn with --batchnorm.")
@data_dir_option
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs under OUT/tensorboard.")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp32"]), default="auto", show_default=True,
              help="bf16: mixed bfloat16 (float32 weights, logits and loss); fp32: all float32; "
                   "auto: bf16 on a GPU or a CPU with bf16 instructions, else fp32.")
@click.option("--val-every", type=click.IntRange(min=0), default=512, show_default=True,
              help="Iterations between validation points in steps.csv (0: at epoch ends only). Steps run "
                   "64 at a time, so a point lands at the end of the first block of 64 past each multiple.")
@click.option("--subset", type=click.IntRange(min=2), default=None,
              help="Use only the first N training images (quick trials).")
@guarded
def train(batchnorm, epochs, batch_size, lr, lr_schedule, seed, val_size, out_dir, data_dir, tensorboard, precision,
          val_every, subset):
    """Train the CNN with Adam on MNIST and save it with its curves and metrics.

    The default recipe is the assignment's (5 epochs, batch 16, Adam 1e-3, no batch norm) with the
    learning rate decayed along a cosine, in mixed bfloat16 where the hardware has it.

    Writes OUT/model.keras, history.csv (per epoch), steps.csv (per iteration, with validation
    points), metrics.json (test accuracy, recipe, timings), loss.png, accuracy.png,
    predictions.png and confusion.png.

    Interrupted (Ctrl-C, or the process killed)? Run the same command again: it resumes from the
    last finished epoch. model.keras is only ever written whole.
    """
    from kerascnn import training

    config = training.TrainConfig(
        batchnorm=batchnorm, epochs=epochs, batch_size=batch_size, lr=lr, lr_schedule=lr_schedule, seed=seed, val_size=val_size,
        out_dir=out_dir or training.default_out_dir(batchnorm), data_dir=data_dir, tensorboard=tensorboard,
        precision=precision, val_every=val_every, subset=subset)
    config.check()
    from kerascnn import store

    store.ensure_dir(config.out_dir)  # an unwritable --out fails now, before any work
    click.echo(f"Training {'cnn_bn (batch norm)' if batchnorm else 'cnn'}: {epochs} epoch(s), batch {batch_size}, "
               f"Adam lr {lr:g} ({lr_schedule}), {training.resolve_precision(precision)}, seed {seed} -> {config.out_dir}")
    from kerascnn import data as data_lib

    data = data_lib.load_mnist(data_dir, val_size, seed, subset)
    click.echo(f"MNIST from {data.source}: {len(data.x_train)} training, {len(data.x_val)} validation, "
               f"{len(data.x_test)} test images")
    result = training.train(config, data, notify=click.echo)
    write_run_figures(result, data.x_test, data.y_test)
    m = result.metrics
    click.echo(f"test accuracy {m['test_accuracy']:.2%} (loss {m['test_loss']:.4f}); "
               f"{len(m['epoch_seconds'])} epoch(s) in {m['train_seconds']:.0f} s, "
               f"{m['images_per_second']:,.0f} images/s")
    click.echo(f"wrote {result.out_dir}/: model.keras history.csv steps.csv metrics.json "
               + " ".join(TRAIN_FIGURES))


@click.command()
@click.option("--batchnorm", is_flag=True, help="Count the batch-norm variant.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {layers: [...], total_params: N, ...}.")
@guarded
def summary(batchnorm, as_json):
    """Per-layer table: output shape, parameters, units and multiply-adds per image.

    Units are the activations a layer outputs per image; MACs are the multiply-adds of one image's
    forward pass (conv: H*W*C_out*k*k*C_in, dense: in*out, batch norm: one per unit).
    """
    from kerascnn.model import build_model, layer_table

    table = layer_table(build_model(batchnorm))
    if as_json:
        echo_json(table.to_dict())
        return
    header = f"{'layer':<12}{'kind':<11}{'output shape':>14}{'params':>11}{'units':>10}{'MACs':>13}"
    click.echo(header)
    click.echo("-" * len(header))
    for r in table.rows:
        shape = "x".join(str(d) for d in r.output_shape)
        click.echo(f"{r.name:<12}{r.kind:<11}{shape:>14}{r.params:>11,}{r.units:>10,}{r.macs:>13,}")
    click.echo("-" * len(header))
    click.echo(f"{'total':<37}{table.total_params:>11,}{table.total_units:>10,}{table.total_macs:>13,}")
    conv = [r.params for r in table.rows if r.kind == "conv"]
    dense = [r.params for r in table.rows if r.kind == "dense"]
    click.echo(f"convolution parameters {sum(conv):,} ({' + '.join(f'{p:,}' for p in conv)}); "
               f"dense parameters {sum(dense):,} ({' + '.join(f'{p:,}' for p in dense)})")
    other = table.total_params - sum(conv) - sum(dense)
    if other:
        click.echo(f"batch-norm parameters {other:,} (half of them moving statistics, not trained)")


@click.command()
@model_option
@data_dir_option
@click.option("--out", type=click.Path(dir_okay=False), default="confusion.png", show_default=True,
              help="Where to save the confusion-matrix figure.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@guarded
def evaluate(model_path, data_dir, out, as_json):
    """Test accuracy and loss, per-class accuracy and a confusion-matrix figure."""
    from kerascnn import data as data_lib, evaluation, plots, store

    model = store.load_model(model_path)
    images, labels = data_lib.load_test(data_dir)
    result = evaluation.evaluate(model, images, labels)
    store.save_figure(plots.confusion_figure(result.confusion), out)
    if as_json:
        echo_json(result.to_dict() | {"model": str(store.resolve_model_path(model_path)), "figure": out})
        return
    click.echo(f"model {store.resolve_model_path(model_path)}")
    click.echo(f"test accuracy {result.accuracy:.2%}  loss {result.loss:.4f}  ({result.count:,} images)")
    click.echo("class  images  accuracy  most often mistaken for")
    for c in range(10):
        row = result.confusion[c].copy()
        row[c] = 0
        confused = f"{row.argmax()} ({row.max()})" if row.max() else "-"
        click.echo(f"{c:>5}  {result.confusion[c].sum():>6}  {result.per_class_accuracy[c]:>8.2%}  {confused}")
    click.echo(f"wrote {out}")


@click.command()
@model_option
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Folder for the SavedModel (replaced if it exists).")
@data_dir_option
@guarded
def export(model_path, out, data_dir):
    """Export as a TensorFlow SavedModel and check it against the Keras model.

    The `serving_default` signature takes `images`, float32 (None, 28, 28, 1) in [0, 1], and returns
    `logits` and `probabilities` (None, 10). After writing, the SavedModel is reloaded with
    tf.saved_model.load and its outputs are compared with the Keras model's on a batch of test
    images (random images if MNIST is not at hand): the largest difference must be at most 1e-5.
    """
    import numpy as np

    from kerascnn import UserError, data as data_lib, store

    model = store.load_model(model_path)
    try:
        check, _ = data_lib.load_test(data_dir)
        check, what = check[:256], "256 test images"
    except UserError:
        check = np.random.default_rng(0).random((256, 28, 28, 1), dtype=np.float32)
        what = "256 random images (MNIST not found)"
    result = store.export_savedmodel(model, out, check)
    click.echo(f"exported {store.resolve_model_path(model_path)} -> {os.fspath(result.path)}/ "
               f"(signature serving_default: images -> logits, probabilities)")
    click.echo(f"reloaded with tf.saved_model.load and checked on {what}: max |difference| "
               f"logits {result.max_abs_diff_logits:.2e}, probabilities {result.max_abs_diff_probabilities:.2e} "
               f"(limit {result.tolerance:.0e}): OK")


COMMANDS = [train, summary, evaluate, export]
