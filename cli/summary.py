"""`kerascnn summary`: what a network is made of, layer by layer."""
from __future__ import annotations

import click

from cli.common import guarded, quiet_tensorflow, task_options
from cli.output import echo_json
from kerascnn.data.tasks import Task


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
    import kerascnn as kc

    data = None if dataset == "mnist" and data_dir is None else Task(dataset, data_dir)
    counted = kc.summary(model_path, None if model_path else data, batchnorm=batchnorm)
    if as_json:
        echo_json(counted.to_dict())
        return
    click.echo(counted.table())


COMMANDS = [summary]
