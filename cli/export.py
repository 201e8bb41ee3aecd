"""`kerascnn export`: a SavedModel, ONNX or LiteRT file, checked by its real consumer (kerascnn.exporting.exporter)."""
from __future__ import annotations

import click

from cli.common import guarded, subject_options
from cli.output import full_paths, full_paths_option
from kerascnn.outputs.paths import shown_path
from kerascnn.errors import UserError
from kerascnn.exporting import exporter as export_lib


@click.command()
@subject_options
@click.option("--out", required=True, type=click.Path(),
              help="Where to write: a folder for savedmodel, a file for onnx and litert. An existing one is "
                   "replaced only when it is an earlier export; nothing else is ever deleted.")
@click.option("--format", "fmt", type=click.Choice(["savedmodel", "onnx", "litert"]), default="savedmodel",
              show_default=True, help="onnx and litert need the export extra: pip install \"kerascnn[export]\" (or -e \".[export]\" in a checkout).")
@full_paths_option
@guarded
def export(subject, out, fmt):
    """Export the model and check the artifact with its real consumer before putting it in place.

    savedmodel: a TensorFlow SavedModel (Keras' own exporter) whose `serving_default` takes
    `images`, float32 (None, H, W, C) in [0, 1], and returns `logits` and `probabilities`
    (None, K); the class names travel with it. It is checked by tf.saved_model.load and by the
    TFLite converter and interpreter. onnx: checked by onnxruntime; litert: by the LiteRT
    interpreter, and by a TF1 session loader (the kind TF Serving uses). Each check runs on 256 test images (random images when the data are not at hand,
    said so); a difference from the Keras model above 1e-4, or any disagreement on the predicted
    class, and nothing is written.
    """
    import numpy as np


    subject = subject()
    try:
        images, what = subject.task.test()[0][:256], "test images"
    except UserError:
        images = np.random.default_rng(0).random((256,) + subject.input_shape, dtype=np.float32)
        what = "random images"
    result = export_lib.export(subject.logits_model, out, format=fmt, class_names=subject.class_names,
                               check_images=images, images_kind=what)
    click.echo(f"exported {shown_path(subject.path, full_paths())} -> {result.path} ({fmt}; input images (None, "
               f"{', '.join(map(str, subject.input_shape))}) -> logits, probabilities over {subject.num_classes} classes)")
    for check in result.checks:
        click.echo(f"checked by {check.consumer} on {result.images} {result.images_kind}: max |difference| "
                   f"logits {check.max_abs_diff_logits:.2e}, probabilities {check.max_abs_diff_probabilities:.2e}, "
                   f"same class {check.argmax_agreement:.0%} (limit {check.tolerance:.0e}): OK")


COMMANDS = [export]
