"""Commands that look inside the network: filters, activations, occlude."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from cli.common import choose_image, data_dir_option, echo_json, guarded, image_options, model_option
from kerascnn import UserError


def _out_option(default_help: str):
    return click.option("--out", type=click.Path(dir_okay=False), default=None,
                        help=f"PNG file to write. Default: {default_help} in the current directory.")


def _parse_filter(value: str) -> int | None:
    if value.strip().lower() == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError(f"--filter must be a filter number or 'all', got {value!r}") from None


def _wrote(path, err: bool = False) -> None:
    click.echo(f"wrote {path}", err=err)


# ---------------------------------------------------------------------------- filters
@click.command()
@model_option
@click.option("--layer", default="conv1", show_default=True,
              help="The convolution layer: conv1 or conv2.")
@click.option("--filter", "filter_", default="all", show_default=True, metavar="N|all",
              help="One filter (0-based; the reference report shows conv2's filter 23) or all of them.")
@_out_option("filters_<layer>.png (filters_<layer>_<N>.png for one filter)")
@guarded
def filters(model_path, layer, filter_, out):
    """Draw a convolution layer's raw kernels on one colour scale centred on zero.

    conv1: its 32 3x3 kernels in one grid. conv2 --filter N: the 32 input-channel slices of
    filter N; conv2 --filter all: a 32 x 32 mosaic (a row per filter, a column per input channel).
    Blue is negative, red positive, white zero, with the same scale for every kernel so that signs
    and sizes compare across them. The weights are drawn as they are (no activation maximisation).

    \b
    Example:  kerascnn filters --layer conv2 --filter 23
    """
    from kerascnn import inspect, plots, store

    number = _parse_filter(filter_)
    model = store.load_model(model_path)
    weights = inspect.filter_weights(model, layer, number)
    default = f"filters_{layer}.png" if number is None else f"filters_{layer}_{number}.png"
    path = store.save_figure(plots.filter_grid(weights), out or default)
    click.echo(f"{layer}: {weights.weights.shape[0]} filter(s) x {weights.weights.shape[1]} input "
               f"channel(s) of {weights.weights.shape[2]}x{weights.weights.shape[3]}, weights in "
               f"[{weights.weights.min():.3f}, {weights.weights.max():.3f}]")
    _wrote(path)


# ---------------------------------------------------------------------------- activations
@click.command()
@model_option
@data_dir_option
@image_options
@click.option("--layers", default="conv1,conv2", show_default=True,
              help="Comma-separated layers: conv1, pool1, conv2, pool2 (conv1/conv2 mean the "
                   "rectified maps, after batch norm and ReLU in a batch-norm model).")
@_out_option("activations.png")
@guarded
def activations(model_path, data_dir, digit, index, image_file, layers, out):
    """Draw the activation maps of one image after each named layer.

    Choose the image with exactly one of --digit, --index or --image. The maps come from a Keras
    sub-model (the model's input to the named layers' outputs) in one forward pass; each layer gets
    a grid of its 32 maps on one colour scale, with the input image beside them.

    \b
    Example:  kerascnn activations --digit 7 --layers conv1,conv2
    """
    from kerascnn import inspect, plots, store

    names = [name.strip() for name in layers.split(",") if name.strip()]
    image, label, _, description = choose_image(digit, index, image_file, data_dir)
    model = store.load_model(model_path)
    result = inspect.activations(model, image, names)
    truth = "" if label is None else f", true {label}"
    input_title = (f"input: {description}\n"
                   f"predicted {result.pred} (P = {result.probabilities.max():.4f}){truth}")
    figure = plots.activation_grid(result, input_title=input_title)
    path = store.save_figure(figure, out or "activations.png")
    for name, maps in result.maps.items():
        layer = result.layers[name]
        shown = name if layer == name else f"{name} ({layer})"
        click.echo(f"{shown}: {maps.shape[-1]} maps of {maps.shape[0]}x{maps.shape[1]}, "
                   f"values in [{maps.min():.3f}, {maps.max():.3f}]")
    _wrote(path)


# ---------------------------------------------------------------------------- occlude
@click.command()
@model_option
@data_dir_option
@image_options
@click.option("--label", type=int, default=None,
              help="With --image only: the class to follow (default: the clean image's prediction).")
@click.option("--patch", type=int, default=14, show_default=True, help="Side of the square patch, in pixels.")
@click.option("--stride", type=int, default=7, show_default=True,
              help="Step between patch positions, in pixels (positions never run past the edge).")
@click.option("--fill", type=float, default=0.5, show_default=True,
              help="Grey value of the patch, in [0, 1].")
@click.option("--map", "draw_map", is_flag=True,
              help="Also draw a sensitivity map: P(true class) for the patch at every position "
                   "(stride 1), as a heat map over the image, into <out>_map.png.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as JSON instead of the table (file messages go to stderr).")
@_out_option("occlusion.png (and occlusion_map.png with --map)")
@guarded
def occlude(model_path, data_dir, digit, index, image_file, label, patch, stride, fill, draw_map, as_json,
            out):
    """Occlude the image with a grey square patch at each position and see what the model says.

    The patch's top-left pixel steps by --stride from the top-left corner, rows first (row-major),
    while the patch fits; the defaults give the 9 positions of the reference report. All occluded
    copies go through the model in one batch. Prints a table (position, row, col of the patch's
    top-left pixel, P(true class), predicted class, its probability) under the clean image's
    prediction, and saves a figure of the occluded copies (mistakes in red). For the first test 7
    or 9 with patch 14 and stride 7, the reference report's numbers are shown beside ours.

    With --image there is no true label: the class followed is the clean image's prediction,
    unless --label names one.

    \b
    Example:  kerascnn occlude --digit 9 --map
    """
    from kerascnn import occlusion, plots, store

    occlusion.check_arguments(28, 28, patch, stride, fill)  # before any loading
    if label is not None and image_file is None:
        raise UserError("--label is only for --image: a test image has its own label")
    if label is not None and not 0 <= label <= 9:
        raise UserError(f"--label must be 0-9, got {label}")
    image, true_label, test_index, description = choose_image(digit, index, image_file, data_dir)
    model = store.load_model(model_path)
    follow = true_label if true_label is not None else label
    result = occlusion.occlude(model, image, follow, patch=patch, stride=stride, fill=fill, index=test_index)
    if label is not None:
        result = dataclasses.replace(result, label_source="--label")
    reference = occlusion.reference_table(true_label, patch, stride)
    if reference is not None and not _first_of_class(test_index, true_label, digit, data_dir):
        reference = None
    out = Path(out or "occlusion.png")
    written = [store.save_figure(plots.occlusion_grid(result, reference, title=description), out)]
    if draw_map:
        heat = occlusion.sensitivity_map(model, image, result.label, patch=patch, fill=fill, index=test_index)
        heat = dataclasses.replace(heat, label_source=result.label_source)
        map_path = out.with_name(f"{out.stem}_map{out.suffix or '.png'}")
        written.append(store.save_figure(plots.occlusion_map(heat, title=description), map_path))
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(format_table(result, description, reference))
    for path in written:
        _wrote(path, err=as_json)


def _first_of_class(test_index, label, digit, data_dir) -> bool:
    """Whether the test image is the first of its class (the reference report's kind of image)."""
    if digit is not None:
        return True
    from kerascnn import data

    return data.pick(data.load_arrays(data_dir)[3], digit=label) == test_index


def format_table(result, description: str, reference=None) -> str:
    """The occlusion result as aligned text: a header on the clean image, one row per position."""
    k = result.label
    if result.label_source == "true label":
        header = f"{description}: true class {k}"
    elif result.label_source == "--label":
        header = f"{description}: following class {k} (--label)"
    else:
        header = f"{description}: no true label, following the clean prediction {k} (--label to choose)"
    lines = [header,
             f"clean image:  predicted {result.clean_pred} (P = {result.clean_probabilities.max():.4f}), "
             f"P({k}) = {result.clean_prob_true:.4f}",
             f"{result.patch}x{result.patch} patch of grey {result.fill:g}, stride {result.stride}: "
             f"{result.count} positions, row-major from the top-left (row, col = the patch's top-left pixel)",
             ""]
    ptrue = f"P({k})"
    head = f"{'pos':>4} {'row':>4} {'col':>4}  {ptrue:>8}  {'pred':>4}  {'P(pred)':>8}"
    if reference is not None:
        head += f"   | {'ref ' + ptrue:>9}  {'ref pred':>8}"
    lines.append(head)
    wrong = False
    for p in range(result.count):
        pred = int(result.pred[p])
        mark = "*" if pred != k else " "
        wrong |= pred != k
        row = (f"{p + 1:>4} {int(result.rows[p]):>4} {int(result.cols[p]):>4}  {result.prob_true[p]:>8.4f}  "
               f"{pred:>3}{mark}  {result.prob_pred[p]:>8.4f}")
        if reference is not None:
            ref_pred = reference.pred[p]
            wrong |= ref_pred != k
            row += f"   | {reference.prob_true[p]:>9.4f}  {ref_pred:>7}{'*' if ref_pred != k else ' '}"
        lines.append(row)
    if wrong:
        lines.append(f"* predicted class is not {k}")
    if reference is not None:
        lines.append(f"reference: the report's table for its first test {k} (a PyTorch CNN, original MNIST "
                     f"order): a different model and maybe a different image, for comparison only")
    missed = result.never_covered()
    if missed:
        lines.append(f"note: {missed} pixels are never covered by the patch with stride {result.stride} "
                     f"(positions stop where the patch would run past the edge)")
    return "\n".join(lines)


COMMANDS = [filters, activations, occlude]
