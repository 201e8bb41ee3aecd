"""`kerascnn filters`: a convolution layer's raw kernels (kerascnn.experiments.filters)."""
from __future__ import annotations

import click

from cli.common import guarded, subject_options
from cli.output import emit, json_option, out_options
from kerascnn.experiments.maximize import STEPS, STYLES


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
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help=f"With --maximize: ascent steps [default: {STEPS['plain']} plain, {STEPS['lucid']} lucid].")
@click.option("--style", type=click.Choice(STYLES, case_sensitive=False), default=None,
              help="With --maximize: plain (keras-io's ascent on the pixels) [default], lucid (lucid's regularisers: "
                   "a decorrelated Fourier image, random shift / scale / rotation at every step) or both (side by "
                   "side, each with its activation and high-frequency share).")
@click.option("--class", "class_", default=None, metavar="NAME|N|all",
              help="With --maximize: maximise the logit of a class (a name or number; MNIST: a digit), or of "
                   "all classes, instead of a layer's filters: what the model takes for each class.")
@click.option("--diversity", type=int, default=None, metavar="N",
              help="With --style lucid or both: N images per filter or class, pushed apart by lucid's diversity "
                   "term (off by default).")
@out_options("filters")
@json_option
@guarded
def filters(subject, layer, filter_, maximize, steps, style, class_, diversity, out_dir, force, as_json):
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

    --style lucid: lucid's regularised feature visualisation (Olah et al., Distill 2017): the image is a
    Fourier spectrum scaled by 1/frequency (colours decorrelated for RGB), squashed into [0, 1], and
    randomly shifted, scaled and rotated at every Adam step, so that it holds the feature rather than
    high-frequency noise. --style both draws plain and lucid side by side. The table gives, for each
    style, the objective on the final input in [0, 1] pixels (plain's clipped) and the share of its
    spectral energy above half the Nyquist frequency. --class N|all: the input each class's logit
    likes most (OUT/maximize_classes[_N].png). --diversity N: N lucid images per unit, kept apart.

    \b
    Example:  kerascnn filters --layer conv2 --filter 23
              kerascnn filters --maximize --layer conv2
              kerascnn filters --maximize --style lucid --layer conv2
              kerascnn filters --maximize --style both --class all
    """
    from click.core import ParameterSource


    ctx = click.get_current_context()
    for name, value in (("--steps", steps), ("--style", style), ("--class", class_), ("--diversity", diversity)):
        if value is not None and not maximize:
            raise click.UsageError(f"{name} goes with --maximize")
    if diversity is not None and diversity < 1:
        raise click.BadParameter(f"must be a whole number of at least 1, got {diversity}", param_hint="--diversity")
    if diversity is not None and diversity > 1 and (style or "plain").lower() == "plain":
        raise click.UsageError("--diversity goes with --style lucid or both")
    chosen = None if filter_ == "all" else int(filter_)
    if class_ is not None and (layer is not None or chosen is not None):
        raise click.UsageError("--class maximises the logits: give --class or --layer / --filter, not both")
    if maximize and ctx.get_parameter_source("out_dir") == ParameterSource.DEFAULT:
        out_dir = f"{out_dir}-maximize"
    import kerascnn as kc

    subject = subject(command="filters")
    if class_ is not None and class_.strip().lower() != "all":
        class_ = subject.task.class_index(class_, "class")   # a bad class: one line naming --class, exit 2
    result = kc.filters(subject, layer=layer, filter=chosen, maximize=maximize, steps=steps,
                        style=style.lower() if style else None, classes=class_, diversity=diversity)
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [filters]
