"""`kerascnn explain`: attribution maps of one image, their faithfulness, or an attack explained
(kerascnn.experiments.explain, .faithfulness, .explain_attack)."""
from __future__ import annotations

import click

from cli.common import default_of, guarded, image_options, subject_options
from cli.lists import CommaList
from cli.output import emit, json_option, on_terminal, out_options
from kerascnn.experiments.faithfulness import Options as FaithfulnessOptions
from kerascnn.experiments.explanation_metrics import METRICS, parse_metrics
from kerascnn.attributions.gradients import METHODS, Settings, parse_methods


@click.command()
@subject_options
@image_options(required=False)
@click.option("--method", "methods", default="all", type=CommaList(parse_methods, "M[,M...]"),
              help=f"Methods, comma-separated, or all (default): {', '.join(METHODS)}.")
@click.option("--target", default=None, metavar="NAME|N",
              help="The class whose logit is explained (default: the predicted class). With --attack: the "
                   "attack's target class (default: 4, or the last class).")
@click.option("--layer", default=None, metavar="NAME",
              help="Grad-CAM's convolution layer (default: the last; a wrong name lists them).")
@click.option("--ig-steps", type=click.IntRange(min=1), default=default_of(Settings, "ig_steps"), show_default=True,
              help="Integrated gradients: gradient points on the path from black to the image.")
@click.option("--faithfulness", is_flag=True,
              help="Score every method by deletion and insertion over --count test images, against a random "
                   "order, and run the model-randomisation check (default --out runs/explain-faithfulness).")
@click.option("--metrics", is_flag=False, flag_value="all", default=None, type=CommaList(parse_metrics, "[M,...]"),
              help="Score every method with Quantus' metrics (all, or some of: " + ", ".join(METRICS) + ") over "
                   "--count test images (default --out runs/explain-metrics).")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help=f"With --faithfulness or --metrics: test images scored (default "
                   f"{default_of(FaithfulnessOptions, 'count')}).")
@click.option("--randomise", type=click.IntRange(min=0), default=None,
              help=f"With --faithfulness or --metrics: images of the randomisation check (default "
                   f"{default_of(FaithfulnessOptions, 'randomise')}; 0 skips it).")
@click.option("--attack", type=click.Choice(["noise"]), default=None,
              help="Attack the image towards --target (the noise attack, its default settings) and set the "
                   "maps of the clean and the attacked image side by side (default --out runs/explain-attack).")
@out_options("explain")
@json_option
@guarded
def explain(subject, pick, methods, target, layer, ig_steps, faithfulness, metrics, count, randomise, attack,
            out_dir, force, as_json):
    """Which pixels make the model say what it says: one map per method, each of the logit of one class.

    \b
    saliency              the gradient of the logit with respect to the pixels
    smoothgrad            that gradient averaged over 32 noisy copies (noise std 0.15)
    integrated-gradients  (image - black) * the mean gradient on the path from black (--ig-steps
                          points); its sum is checked against logit(image) - logit(black)
    gradcam               Grad-CAM of a convolution layer (--layer), upsampled to the image
    occlusion             the logit's drop when a black square (a seventh of the side) covers the pixel

    The image: --class/--digit/--index/--image (default: the first test image of class 7, or of the
    last class when there are fewer). Writes explain.png (the image and the maps, red raising the logit, blue lowering it,
    each map on its own scale), maps.npy and result.json.

    --faithfulness: deletion and insertion curves (pixels set to black, or restored, in the map's
    order) over --count test images, their areas against a random order, and the maps of copies of
    the model with layers re-initialised from the top (Adebayo et al.); writes faithfulness.png,
    randomisation.png, randomisation_maps.png and result.json.

    --metrics: Quantus 0.6's metrics with its defaults (faithfulness correlation, max- and
    avg-sensitivity, local Lipschitz, sparseness, complexity, random-logit) beside the deletion/insertion
    areas and the re-initialised model's rank correlation, with the best method on each; the
    sensitivity metrics re-explain 400 noisy copies of each of the first 5 images. Writes metrics.png
    and result.json (every setting). The shipped cnn, --count 100: about 2 minutes on 2 idle CPU
    cores (README, Explanations; 96 s of it the sensitivity metrics).

    \b
    Examples:  kerascnn explain --digit 3
               kerascnn explain --faithfulness --count 100
               kerascnn explain --metrics sparseness,complexity --count 20
               kerascnn explain --attack noise --target 4
    """
    from click.core import ParameterSource

    ctx = click.get_current_context()
    if faithfulness and (pick is not None or target is not None or attack is not None):
        raise click.UsageError("--faithfulness scores test images by their predicted class: it takes no image, "
                               "--target or --attack")
    if metrics and (faithfulness or pick is not None or target is not None or attack is not None):
        raise click.UsageError("--metrics scores test images by their predicted class: it takes no image, "
                               "--target, --attack or --faithfulness")
    if not (faithfulness or metrics) and (count is not None or randomise is not None):
        raise click.UsageError("--count and --randomise go with --faithfulness or --metrics")
    if layer is not None and "gradcam" not in methods:
        raise click.UsageError("--layer is Grad-CAM's layer: add gradcam to --method")
    mode = "faithfulness" if faithfulness else ("metrics" if metrics else ("attack" if attack else None))
    if mode and ctx.get_parameter_source("out_dir") == ParameterSource.DEFAULT:
        out_dir = f"{out_dir}-{mode}"
    import kerascnn as kc

    subject = subject(command="explain", out_dir=out_dir)
    picked = {} if pick is None else {"index": pick.index, "class_name": pick.class_name, "image": pick.image}
    result = kc.explain(subject, **picked, method=methods, target=target, layer=layer, ig_steps=ig_steps,
                        faithfulness=faithfulness, metrics=metrics or False, count=count, randomise=randomise,
                        attack=attack, progress=on_terminal())
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [explain]
