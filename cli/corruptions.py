"""`kerascnn corruptions`: accuracy under common corruptions (kerascnn.experiments.corruptions)."""
from __future__ import annotations

import click

from cli.common import default_of, guarded, subject_options
from cli.lists import CommaList
from cli.output import emit, json_option, on_terminal, out_options
from kerascnn.corrupt import SEVERITIES, SUITES
from kerascnn.errors import BadValue
from kerascnn.experiments.corruptions import SOURCES, Options


def _names(ctx, param, value):
    """--corruption's items (CommaList: no empty one) checked against the suite, when it is known."""
    if value is None:
        return None
    from kerascnn.corrupt import check_names
    from kerascnn.corrupt import names as suite_names

    names = tuple(dict.fromkeys(value))
    suite = ctx.params.get("suite")
    if suite is None:  # the suite follows the task, known later: a name of neither suite is refused now
        unknown = [n for n in names if not any(n in suite_names(s) for s in SUITES)]
        if unknown:
            raise click.BadParameter(f"unknown corruption {unknown[0]!r}: choose from "
                                     + "; ".join(f"{s}: {', '.join(suite_names(s))}" for s in SUITES))
        return names
    try:
        return check_names(suite, names)
    except BadValue as e:
        raise click.BadParameter(e.message) from None


def _severities(items: tuple) -> tuple:
    """--severity's items (kerascnn.lists.split_list) -> whole numbers 1-5, repeats dropped."""
    try:
        found = tuple(dict.fromkeys(int(v) for v in items))
    except ValueError:
        raise BadValue("severities", f"give whole numbers 1-5 separated by commas, got {','.join(items)!r}") from None
    bad = [s for s in found if s not in SEVERITIES]
    if bad:
        raise BadValue("severities", f"a severity must be 1-5, got {bad[0]}")
    return found


@click.command()
@subject_options
@click.option("--suite", type=click.Choice(list(SUITES)), default=None, is_eager=True,
              help="mnist-c: MNIST-C's 15 (shot noise ... canny edges); common: ImageNet-C's 15 (gaussian noise "
                   "... jpeg), any size and channel count. Default: mnist-c for 28x28 grey images, else common.")
@click.option("--corruption", "corruptions", default=None, type=CommaList(tuple, "C1,C2,..."), callback=_names,
              help="Only these corruptions of the suite, comma-separated (default: all 15).")
@click.option("--severity", "severities", default=",".join(str(s) for s in SEVERITIES), show_default=True,
              type=CommaList(_severities, "S1,S2,..."), help="Severities, 1 (mild) to 5 (harsh), comma-separated.")
@click.option("--count", type=click.IntRange(min=1), default=default_of(Options, "count"), show_default=True,
              help="The first N test images.")
@click.option("--baseline", default=None, metavar="MODEL",
              help="The model the corruption error is measured against (.keras file or run folder; 'none' for "
                   "none). Default: the shipped cnn for 28x28 grey 10-class tasks.")
@click.option("--also", "others", multiple=True, type=click.Path(exists=True), metavar="MODEL",
              help="Another model to run on the same corrupted images (repeat for several).")
@click.option("--source", type=click.Choice(list(SOURCES)), default=default_of(Options, "source"), show_default=True,
              help="local: generated here (seeded, no download); tfds: the published sets from tensorflow-datasets "
                   "(mnist_corrupted, one severity each; cifar10_corrupted).")
@click.option("--seed", type=int, default=default_of(Options, "seed"), show_default=True,
              help="Seeds the corruptions' random draws (each image's own, whatever --count).")
@out_options("corruptions")
@json_option
@guarded
def corruptions(subject, suite, corruptions, severities, count, baseline, others, source, seed, out_dir, force,
                as_json):
    """Accuracy under common corruptions: noise, blur, weather, geometry and digital damage.

    Runs the model on its first --count test images under each corruption of --suite at each
    --severity, generated here and deterministic under --seed; prints accuracy per corruption
    and severity and the corruption error against --baseline (Hendrycks & Dietterich 2019: the
    errors summed over severities, divided by the baseline's; mCE is their mean, 100% is as good
    as the baseline). Writes corruptions.png (one example per corruption beside the bars) and
    result.json.

    Measured on two quiet CPU cores (AMD EPYC, 2026-12-03): the mnist-c suite at five severities
    over 1,000 MNIST images, 78 s (56 s of it generating the images); with two more models (--also),
    88 s.

    \b
    Examples:
      kerascnn corruptions
      kerascnn corruptions --model saved_models/cnn_pgd --also saved_models/cnn_bn
      kerascnn corruptions --corruption fog,rotate --severity 3,5 --count 200
      kerascnn corruptions --dataset cifar10 --model my.keras --suite common --source tfds
    """
    import kerascnn as kc

    subject = subject(command="corruptions")
    result = kc.corruptions(subject, suite=suite, corruptions=corruptions, severities=severities, count=count,
                            source=source, baseline=baseline, others=tuple(others), seed=seed, progress=on_terminal())
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [corruptions]
