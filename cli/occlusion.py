"""`kerascnn occlude`: a grey patch slid over an image (kerascnn.experiments.occlusion)."""
from __future__ import annotations

import click

from cli.common import default_of, finite, guarded, image_options, subject_options
from cli.output import emit, json_option, on_terminal, out_options
from kerascnn.experiments.occlusion import Options


@click.command()
@subject_options
@image_options
@click.option("--label", default=None, metavar="NAME|N",
              help="With --image only: the class to follow (default: the clean image's prediction).")
@click.option("--patch", type=click.IntRange(min=1), default=default_of(Options, "patch"),
              help="Side of the square patch in pixels, at least 1 (default: half the image side, 14 on MNIST).")
@click.option("--stride", type=click.IntRange(min=1), default=default_of(Options, "stride"),
              help="Step between patch positions in pixels, at least 1 (default: half the patch, 7 on MNIST); "
                   "positions never run past the edge.")
@click.option("--fill", type=float, default=default_of(Options, "fill"), show_default=True, callback=finite(0, 1),
              help="Grey value of the patch, in [0, 1].")
@click.option("--map", "draw_map", is_flag=True,
              help="Also the sensitivity map: P(class) with the patch at every position (stride 1; on images "
                   "over 64 + patch pixels, the smallest stride that keeps 64 positions a side), drawn "
                   "into OUT/occlusion_map.png and kept in result.json.")
@out_options("occlude")
@json_option
@guarded
def occlude(subject, pick, label, patch, stride, fill, draw_map, out_dir, force, as_json):
    """Occlude the image with a grey square patch at each position and see what the model says.

    The patch's top-left pixel steps by --stride from the top-left corner, rows first (row-major),
    while the patch fits; the MNIST defaults give the 9 positions of the reference report. All
    occluded copies go through the model in one batch. Prints a table (position, row and col of the
    patch's top-left pixel, P(class), predicted class, its probability) and writes
    OUT/occlusion.png (mistakes marked) and result.json. For MNIST's first test 7 or 9 with patch 14
    and stride 7, the reference report's numbers are shown beside ours.

    With --image there is no true label: the class followed is the clean image's prediction,
    unless --label names one.

    \b
    Example:  kerascnn occlude --digit 9 --map
    """

    if label is not None and pick.image is None:
        raise click.UsageError("--label is only for --image: a test image has its own label")
    import kerascnn as kc

    subject = subject(command="occlude")
    result = kc.occlude(subject, index=pick.index, class_name=pick.class_name, image=pick.image, label=label,
                        patch=patch, stride=stride, fill=fill, map=draw_map, progress=on_terminal())
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [occlude]
