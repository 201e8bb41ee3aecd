"""`kerascnn concepts`: TCAV, which concepts each class's logit uses (kerascnn.experiments.concepts)."""
from __future__ import annotations

import click

from cli.common import default_of, finite, guarded, subject_options
from cli.output import emit, json_option, on_terminal, out_options
from kerascnn.data.concepts import MIN_IMAGES, concept_files, parse_concept
from kerascnn.errors import BadValue
from kerascnn.experiments.concepts import Options


def _concepts(ctx, param, values):
    """NAME=DIR pairs, each folder holding at least MIN_IMAGES pictures, no name twice: checked before any work."""
    pairs = []
    try:
        for spec in values:
            name, folder = parse_concept(spec)
            if name in dict(pairs):
                raise BadValue("concepts", f"two concepts are named {name!r}")
            concept_files(folder, name)
            pairs.append((name, folder))
    except BadValue as e:
        raise click.BadParameter(e.message) from None
    return tuple(pairs)


@click.command()
@subject_options
@click.option("--concept", "concepts", multiple=True, callback=_concepts, metavar="NAME=DIR",
              help=f"A concept: a name and a folder of at least {MIN_IMAGES} pictures of it (repeat for more). "
                   "Default on MNIST: the demonstration concepts horizontal-bar, closed-loop, diagonal-stroke "
                   "and thick-stroke, cut from the training digits.")
@click.option("--layer", default=None, metavar="NAME",
              help="The layer whose activations the CAVs separate (default: the last convolution; a wrong name "
                   "lists them).")
@click.option("--target", default=None, metavar="NAME|N", help="One class to score (default: every class).")
@click.option("--random-runs", type=click.IntRange(min=2), default=default_of(Options, "random_runs"),
              show_default=True, help="CAVs per concept, each against its own random training images; as many "
                                      "random-vs-random CAVs form the baseline of the t-test.")
@click.option("--count", type=click.IntRange(min=1), default=default_of(Options, "count"), show_default=True,
              help="Test images per target class (the first of that class).")
@click.option("--random-images", type=click.IntRange(min=MIN_IMAGES), default=None,
              help="Random counterexamples per run (default: as many as the largest concept has pictures).")
@click.option("--demo-images", type=click.IntRange(min=MIN_IMAGES), default=default_of(Options, "demo_images"),
              show_default=True, help="Pictures per MNIST demonstration concept.")
@click.option("--alpha", type=float, default=default_of(Options, "alpha"), show_default=True,
              callback=finite(0, 1, low_open=True),
              help="Significance level, divided by concepts x targets (Bonferroni).")
@click.option("--seed", type=int, default=default_of(Options, "seed"), show_default=True,
              help="Seeds the random images, the demonstration picks and the CAVs' train/test splits.")
@out_options("concepts")
@json_option
@guarded
def concepts(subject, concepts, layer, target, random_runs, count, random_images, demo_images, alpha, seed,
             out_dir, force, as_json):
    """Which human concepts a class's logit uses: TCAV (Kim et al. 2018).

    For each concept and each of --random-runs runs, a linear classifier (L2 logistic regression) tells
    the concept's pictures from random training images by their activations at --layer; its normal is
    the concept activation vector (CAV). A class's TCAV score is the share of its --count test images
    whose logit rises along the CAV (a positive directional derivative). The same for CAVs of random
    images against random images gives the baseline: a two-sided t-test of the concept's scores
    against it, at --alpha divided by concepts x classes (Bonferroni), decides; a concept that fails
    it is reported as n.s. (not significant), never as a score. Near 1: the concept raises the logit
    for almost every image of the class; near 0: it lowers it.

    Writes concepts.png (concepts x classes, n.s. cells grey), concept_examples.png and result.json
    (every run's score, p-values, the CAVs' held-out accuracy).

    \b
    Examples:  kerascnn concepts                       (MNIST: the four demonstration concepts)
               kerascnn concepts --target 7
               kerascnn concepts --concept stripes=pics/stripes --concept dots=pics/dots --layer conv2
    """
    import kerascnn as kc

    subject = subject(command="concepts", out_dir=out_dir)
    result = kc.concepts(subject, concepts=list(concepts) or None, layer=layer, target=target,
                         random_runs=random_runs, count=count, random_images=random_images, demo_images=demo_images,
                         alpha=alpha, seed=seed, progress=on_terminal())
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [concepts]
