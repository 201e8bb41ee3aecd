"""`kerascnn activations`: the maps of one image after chosen layers (kerascnn.experiments.activations)."""
from __future__ import annotations

import click

from cli.common import guarded, image_options, subject_options
from cli.lists import CommaList
from cli.output import emit, json_option, out_options


@click.command()
@subject_options
@image_options
@click.option("--layers", default=None, type=CommaList(tuple, "A,B,..."),
              help="Comma-separated layers with (h, w, channels) output (default: the convolution layers, 4 spread "
                   "from the first to the last in a deeper network; at most 64 maps a layer are drawn; "
                   "for the MNIST CNN conv1,conv2 = the rectified maps, after batch norm and ReLU in "
                   "cnn_bn). A wrong name lists the valid ones.")
@out_options("activations")
@json_option
@guarded
def activations(subject, pick, layers, out_dir, force, as_json):
    """Draw the activation maps of one image after each named layer.

    Choose the image with exactly one of --class, --digit, --index or --image. The maps come from a
    Keras sub-model (the model's input to the layers' outputs, and its logits) in one forward pass;
    each layer gets a grid of its maps on one colour scale, with the input image beside them.
    Writes OUT/activations.png and result.json.

    \b
    Example:  kerascnn activations --digit 7 --layers conv1,conv2
    """

    import kerascnn as kc

    subject = subject(command="activations")
    result = kc.activations(subject, index=pick.index, class_name=pick.class_name, image=pick.image, layers=layers)
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [activations]
