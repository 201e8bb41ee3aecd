"""`kerascnn certify`: certified L2 robustness by randomized smoothing (kerascnn.experiments.certify)."""
from __future__ import annotations

import functools

import click

from cli.common import build_subject, default_of, finite, guarded, subject_options
from cli.output import emit, json_option, on_terminal, out_options
from kerascnn import SAVED_MODELS
from kerascnn.experiments.certify import Options

#: The shipped model trained with Gaussian noise (train --noise-sd 0.25): certify's default on MNIST.
SMOOTH = SAVED_MODELS / "cnn_smooth"


def _n_at_least_n0(ctx, param, value):
    n0 = ctx.params.get("n0")
    if value is not None and n0 is not None and value < n0:
        raise click.BadParameter(f"must be at least --n0 ({n0}), got {value}")
    return value


@click.command()
@subject_options
@click.option("--sigma", type=float, default=default_of(Options, "sigma"), show_default=True,
              callback=finite(0, low_open=True), help="The noise's standard deviation, in pixel units ([0, 1]).")
@click.option("--n0", type=click.IntRange(min=1), default=default_of(Options, "n0"), show_default=True,
              is_eager=True, help="Noisy samples that choose the class.")
@click.option("--n", type=click.IntRange(min=1), default=default_of(Options, "n"), show_default=True,
              callback=_n_at_least_n0, help="Noisy samples that bound the class's probability (at least --n0).")
@click.option("--alpha", type=float, default=default_of(Options, "alpha"), show_default=True,
              callback=finite(0, 1, low_open=True), help="The probability that a certificate is wrong, in (0, 1).")
@click.option("--count", type=click.IntRange(min=1), default=default_of(Options, "count"), show_default=True,
              help="The first N test images.")
@click.option("--predict", is_flag=True, help="PREDICT instead: the smoothed class or an abstention, no radius.")
@click.option("--attack", is_flag=True,
              help="Also attack each certified image within its own radius (L2 APGD with EOT, AutoAttack's rand "
                   "version) and ask the smoothed classifier again: a changed class is a broken certificate.")
@click.option("--attack-steps", type=click.IntRange(min=1), default=default_of(Options, "attack_steps"),
              show_default=True, help="With --attack: APGD's steps.")
@click.option("--attack-samples", type=click.IntRange(min=1), default=default_of(Options, "attack_samples"),
              show_default=True,
              help="With --attack: the noise draws each gradient averages (the attack costs steps x samples "
                   "gradients an image).")
@click.option("--seed", type=int, default=default_of(Options, "seed"), show_default=True, help="Seeds the noise.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=default_of(Options, "precision"),
              show_default=True,
              help="bf16: the model's bfloat16 copy classifies the noisy images, about 1.5 times the samples a second "
                   "on CPUs with AVX512_BF16; the certificate is then that copy's (its predictions differ from fp32's "
                   "only near a decision boundary: none of cnn_smooth's on 20 test images x 2,000 copies).")
@out_options("certify")
@json_option
@guarded
def certify(subject, sigma, n0, n, alpha, count, predict, attack, attack_steps, attack_samples, seed, precision, out_dir,
            force, as_json):
    """Certified robustness: an L2 radius per image that no perturbation can cross.

    Randomized smoothing (Cohen, Rosenfeld & Kolter 2019): the smoothed classifier predicts the
    class the model gives most often under Gaussian noise of deviation --sigma; --n0 samples
    choose it, --n more bound its probability pA from below (Clopper-Pearson, level --alpha), and
    the radius is sigma * Phi^-1(pA), or the image is abstained on when pA < 1/2. Prints and draws
    certified accuracy against the radius. Writes certify.png and result.json (every image's class,
    radius and bound).

    The model should be trained with the same noise (kerascnn train --noise-sd 0.25). Default on
    MNIST: the shipped saved_models/cnn_smooth.

    \b
    Examples:
      kerascnn certify --count 100 --n 1000
      kerascnn certify --model saved_models/cnn --sigma 0.12 --predict
    """
    model, dataset, data_dir = subject.args
    if model is None and dataset == "mnist" and data_dir is None and (SMOOTH / "model.keras").is_file():
        subject = functools.partial(build_subject, str(SMOOTH), dataset, data_dir, **subject.keywords)
    import kerascnn as kc

    subject = subject(command="certify")
    result = kc.certify(subject, sigma=sigma, n0=n0, n=n, alpha=alpha, count=count, predict=predict, attack=attack,
                        attack_steps=attack_steps, attack_samples=attack_samples, seed=seed, precision=precision,
                        progress=on_terminal())
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [certify]
