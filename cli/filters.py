"""`kerascnn filters`: a convolution layer's raw kernels (kerascnn.experiments.filters)."""
from __future__ import annotations

import click

from cli.common import default_of, guarded, subject_options
from cli.output import emit, json_option, out_options
from kerascnn.experiments.maximize import Options as MaximizeOptions


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
@click.option("--maximize", is_flag=True,
              help="Also find the input that maximises each filter's mean activation (gradient ascent from grey "
                   "noise, keras-io's recipe), drawn beside its raw kernel (default --out runs/filters-maximize).")
@click.option("--steps", type=click.IntRange(min=1), default=default_of(MaximizeOptions, "steps"), show_default=True,
              help="With --maximize: gradient ascent steps.")
@out_options("filters")
@json_option
@guarded
def filters(subject, layer, filter_, maximize, steps, out_dir, force, as_json):
    """Draw a convolution layer's raw kernels on one colour scale centred on zero.

    A first layer: its kernels in one grid (RGB models: each input channel). A later layer with
    --filter N: the input-channel slices of filter N; --filter all: a filters x input-channels
    mosaic. Blue is negative, red positive, white zero, one scale for every kernel so that signs
    and sizes compare. Writes OUT/filters_<layer>[_<N>].png and result.json.

    --maximize: what each filter looks for. From grey noise, normalised gradient steps raise the
    filter's mean activation over the inner positions (keras-io "Visualizing what convnets learn";
    plus 1% of the pre-activation so that a filter silent on grey still gets a gradient). Writes
    OUT/maximize_<layer>[_<N>].png (each input beside its kernel for a first layer; a later layer's
    kernels in filters_<layer>.png beside it), maximize.npy (the inputs, unclipped) and result.json.

    \b
    Example:  kerascnn filters --layer conv2 --filter 23
              kerascnn filters --maximize --layer conv2
    """
    from click.core import ParameterSource


    ctx = click.get_current_context()
    if not maximize and ctx.get_parameter_source("steps") != ParameterSource.DEFAULT:
        raise click.UsageError("--steps goes with --maximize")
    chosen = None if filter_ == "all" else int(filter_)
    if maximize and ctx.get_parameter_source("out_dir") == ParameterSource.DEFAULT:
        out_dir = f"{out_dir}-maximize"
    import kerascnn as kc

    subject = subject(command="filters")
    result = kc.filters(subject, layer=layer, filter=chosen, maximize=maximize, steps=steps if maximize else None)
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [filters]
