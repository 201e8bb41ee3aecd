"""`kerascnn filters`: a convolution layer's raw kernels (kerascnn.experiments.filters)."""
from __future__ import annotations

import click

from cli.common import guarded, json_option, out_options, subject_options


def _filter_value(ctx, param, value):
    if value.strip().lower() == "all":
        return "all"
    if not value.strip().isdigit():
        raise click.BadParameter(f"must be a filter number (0, 1, ...) or 'all', got {value!r}")
    return value.strip()


@click.command()
@subject_options
@click.option("--layer", default=None, metavar="NAME",
              help="A convolution layer of the model (default: the first; the MNIST CNN has conv1 and conv2). "
                   "A wrong name lists the model's convolution layers.")
@click.option("--filter", "filter_", default="all", show_default=True, metavar="N|all", callback=_filter_value,
              help="One filter's input-channel slices (0-based; the reference report shows conv2's filter 23), or all.")
@out_options("filters")
@json_option
@guarded
def filters(subject, layer, filter_, out_dir, force, as_json):
    """Draw a convolution layer's raw kernels on one colour scale centred on zero.

    A first layer: its kernels in one grid (RGB models: each input channel). A later layer with
    --filter N: the input-channel slices of filter N; --filter all: a filters x input-channels
    mosaic. Blue is negative, red positive, white zero, one scale for every kernel so that signs
    and sizes compare. Writes OUT/filters_<layer>[_<N>].png and result.json.

    \b
    Example:  kerascnn filters --layer conv2 --filter 23
    """
    from cli.common import emit
    from kerascnn.experiments import filters as experiment

    subject = subject()
    result = experiment.run(subject, experiment.Options(layer, None if filter_ == "all" else int(filter_)))
    emit(experiment, result, out_dir, "filters", force=force, as_json=as_json, protect=[subject.path])


COMMANDS = [filters]
