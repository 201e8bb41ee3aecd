"""`kerascnn summary`: what a network is made of, layer by layer."""
from __future__ import annotations

import click

from cli.common import guarded, quiet_tensorflow, task_options
from cli.output import echo_json
from kerascnn.data.tasks import Task
from kerascnn.model.network import build_model, layer_table


@click.command()
@click.option("--batchnorm", is_flag=True, help="Count the batch-norm variant.")
@task_options
@click.option("--model", "model_path", type=click.Path(), default=None,
              help="Count this .keras model (or run folder) instead of the assignment's network.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {layers: [...], total_params: N, ...}.")
@guarded
def summary(batchnorm, dataset, data_dir, model_path, as_json):
    """Per-layer table: output shape, parameters, units and multiply-adds per image.

    The assignment's network is built for the dataset's image shape and classes (MNIST by default),
    or --model counts any Keras model. Units are the activations a layer outputs per image; MACs are
    the multiply-adds of one image's forward pass (conv: H*W*C_out*k*k*C_in, dense: in*out, batch
    norm: one per unit).
    """
    quiet_tensorflow()

    if model_path is not None:
        from kerascnn.model.subject import load_keras

        model = load_keras(model_path)
    elif dataset == "mnist" and data_dir is None:  # the assignment's own shape: no need to read MNIST
        model = build_model(batchnorm)
    else:
        task = Task(dataset, data_dir)
        model = build_model(batchnorm, input_shape=task.input_shape, num_classes=task.num_classes)
    table = layer_table(model)
    if as_json:
        echo_json(table.to_dict())
        return
    header = f"{'layer':<14}{'kind':<11}{'output shape':>14}{'params':>11}{'units':>10}{'MACs':>13}"
    click.echo(f"{model.name}: input {tuple(model.input_shape[1:])} -> {model.output_shape[-1]} outputs")
    click.echo(header)
    click.echo("-" * len(header))
    for r in table.rows:
        shape = "x".join(str(d) for d in r.output_shape)
        click.echo(f"{r.name[:13]:<14}{r.kind[:10]:<11}{shape:>14}{r.params:>11,}{r.units:>10,}{r.macs:>13,}")
    click.echo("-" * len(header))
    click.echo(f"{'total':<39}{table.total_params:>11,}{table.total_units:>10,}{table.total_macs:>13,}")
    conv = [r.params for r in table.rows if r.kind == "conv"]
    dense = [r.params for r in table.rows if r.kind == "dense"]
    click.echo(f"convolution parameters {sum(conv):,} ({' + '.join(f'{p:,}' for p in conv) or '-'}); "
               f"dense parameters {sum(dense):,} ({' + '.join(f'{p:,}' for p in dense) or '-'})")
    other = table.total_params - sum(conv) - sum(dense)
    if other:
        click.echo(f"other parameters {other:,} (batch norm: half of them moving statistics, not trained)")


COMMANDS = [summary]
