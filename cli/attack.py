"""`kerascnn attack ...`: adversarial examples (kerascnn.experiments.nontargeted / targeted / noise)."""
from __future__ import annotations

import click

from cli.common import check_class_spec, default_of, finite, guarded, image_options, subject_options
from cli.output import emit, json_option, on_terminal, out_options
from kerascnn.attacks.loop import parse_classes
from kerascnn.data.tasks import Pick
from kerascnn.errors import BadValue
from kerascnn.experiments import minimal as minimal_exp
from kerascnn.experiments import noise as noise_exp
from kerascnn.experiments import nontargeted as nontargeted_exp
from kerascnn.experiments import targeted as targeted_exp
from kerascnn.experiments import universal as universal_exp


@click.group()
def attack():
    """Fool the network: images from noise, targeted look-alikes, (universal) noise.

    Every attack changes the pixels of a batch by gradient steps (the weights stay fixed), one
    compiled step for the whole batch, pixels kept in [0, 1] unless --no-clip; it works on the
    model's logits (a final softmax is read through). Each writes into --out (default
    runs/attack-<name>/): a figure, images.npy and result.json.

    \b
    Optimizers (--optimizer), chosen by measurement on the pretrained MNIST model:
      sign  every pixel moves by exactly --lr per step (iterative FGSM): reaches a goal in about
            half Adam's steps, and for `noise` finds smaller noise than Adam. The default of
            nontargeted and noise, which stop at a goal.
      adam  Adam on the pixels, --lr its step size: converges on a trade-off where sign keeps
            oscillating. The default of targeted, which runs to convergence.
    """


def _classes_spec(ctx, param, value):

    try:
        parse_classes(value, None if value.strip().lower() != "all" else 1)
    except BadValue as e:
        raise click.BadParameter(e.message) from None
    return value


def common_options(options_class, name: str, seed_help: str):
    """--steps --lr --optimizer --seed --clip/--no-clip --out --force --json, defaults from `options_class`."""
    def decorate(func):
        func = json_option(func)
        func = out_options(f"attack-{name}")(func)
        func = click.option("--clip/--no-clip", default=default_of(options_class, "clip"), show_default=True,
                            help="Keep pixels in [0, 1] (projected after every step).")(func)
        func = click.option("--seed", type=int, default=default_of(options_class, "seed"), show_default=True,
                            help=seed_help)(func)
        func = click.option("--optimizer", type=click.Choice(["sign", "adam"]),
                            default=default_of(options_class, "optimizer"), show_default=True,
                            help="The pixel update (see `kerascnn attack --help`).")(func)
        func = click.option("--lr", type=float, default=default_of(options_class, "lr"), show_default=True,
                            callback=finite(0, low_open=True),
                            help="Step size in pixel units: with sign every pixel moves by exactly LR per step; "
                                 "with adam it is Adam's learning rate on the pixels.")(func)
        func = click.option("--steps", type=click.IntRange(min=1), default=default_of(options_class, "steps"),
                            show_default=True, help="Most gradient steps for the batch.")(func)
        return subject_options(func)
    return decorate


def confidence_option(options_class):
    return click.option("--confidence", type=float, default=default_of(options_class, "confidence"), show_default=True,
                        callback=finite(0, 1, low_open=True),
                        help="An image is done once predicted as its target with at least this probability (0-1).")


def _run(experiment, subject, options, label: str, out_dir, force, as_json, name: str, show_done: bool = True):
    """Calls kc.attack.<name> with the options the command built, then writes and prints its Result."""
    import dataclasses

    import kerascnn as kc

    fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    result = getattr(kc.attack, name)(subject, progress=on_terminal(), **fields)
    emit(result, out_dir, force=force, as_json=as_json)


@attack.command()
@common_options(nontargeted_exp.Options, "nontargeted", "Seeds the Gaussian noise the images start from.")
@click.option("--classes", default=default_of(nontargeted_exp.Options, "classes"), show_default=True,
              callback=_classes_spec, help="Target classes: all, or numbers and ranges such as 0-4,7.")
@confidence_option(nontargeted_exp.Options)
@guarded
def nontargeted(subject, steps, lr, optimizer, seed, clip, out_dir, force, as_json, classes, confidence):
    """Grow one image per class from Gaussian noise until the model calls it that class.

    All classes form one batch. The loss is the cross-entropy to the target class (it raises the
    class's probability, which is what --confidence asks for), minimised by signed-gradient steps
    (--optimizer). An image stops changing once predicted as its class with probability >=
    --confidence; the run ends when all have, or after --steps. Writes nontargeted.png, images.npy
    and result.json (per class: target, predicted, probability, steps used, success).
    """
    subject = subject(command="attack nontargeted")
    options = nontargeted_exp.Options(classes=classes, steps=steps, lr=lr, optimizer=optimizer,
                                      confidence=confidence, seed=seed, clip=clip)
    _run(nontargeted_exp, subject, options, "nontargeted", out_dir, force, as_json, "nontargeted")


@attack.command()
@common_options(targeted_exp.Options, "targeted", "Seeds the Gaussian noise the images start from.")
@click.option("--target", "guide", default=None, metavar="NAME|N",
              help="The class the images should look like: the guide is its first test image "
                   "(default: 7, or the last class of a task with fewer).")
@click.option("--index", type=click.IntRange(min=0), default=None,
              help="Use test image I as the guide instead (in the data source's order).")
@click.option("--classes", default=default_of(targeted_exp.Options, "classes"), show_default=True,
              callback=_classes_spec, help="The classes to make it predicted as: all, or e.g. 0-4,7.")
@click.option("--beta", type=float, default=default_of(targeted_exp.Options, "beta"), show_default=True,
              callback=finite(0), help="Weight of mse(x, guide) against the cross-entropy: larger looks more "
                                       "like the guide but succeeds for fewer classes.")
@guarded
def targeted(subject, steps, lr, optimizer, seed, clip, out_dir, force, as_json, guide, index, classes, beta):
    """Images that look like a real test image yet are predicted as each class.

    From Gaussian noise, minimises cross_entropy(model(x), c) + beta * mse(x, guide) for every class
    c in one batch, by Adam on the pixels (--optimizer), for all --steps (the distance keeps
    shrinking after the class is reached). Success: predicted as c. mse is the mean over pixels.

    With the pretrained MNIST model and the guide the first test 7 (mean MSE, successes): beta 1:
    0.027, 10/10, visibly noisy; beta 10: 0.008, 10/10; beta 100 (the default): 0.007, 10/10;
    beta 1000 (the reference report's): 0.005, 9/10 (class 1 stays a 7).

    Writes targeted.png (the guide and the results), images.npy and result.json.
    """
    subject = subject(command="attack targeted")
    options = targeted_exp.Options(guide=guide, index=index, classes=classes, beta=beta, steps=steps, lr=lr,
                                   optimizer=optimizer, seed=seed, clip=clip)
    _run(targeted_exp, subject, options, f"targeted, beta {beta:g}", out_dir, force, as_json, "targeted",
         show_done=False)


@attack.command()
@common_options(noise_exp.Options, "noise", "Seeds the choice of the --universal test images.")
@click.option("--target", default=None, metavar="NAME|N",
              help="The class the noise should make the model predict (default: 4, or the last class).")
@image_options(required=False)
@click.option("--count", type=click.IntRange(min=1), default=default_of(noise_exp.Options, "count"),
              help="Source images (default: 6, or one per other class when there are fewer). Default sources: "
                   "the first test image of each class other than --target.")
@confidence_option(noise_exp.Options)
@click.option("--beta", type=float, default=default_of(noise_exp.Options, "beta"), show_default=True,
              callback=finite(0), help="Penalty weight on the mean squared noise (0: stopping at --confidence "
                                       "already keeps the noise as small as these steps make it).")
@click.option("--universal", type=click.IntRange(min=0), default=default_of(noise_exp.Options, "universal"),
              show_default=True, help="Add the first source's noise to N random test images (seeded by --seed); 0: skip.")
@click.option("--norm", type=click.Choice(["l2", "linf"]), default=default_of(noise_exp.Options, "norm"),
              help="Find the smallest noise in this norm that reaches the same goal (the minimum-norm attack FMN, "
                   "--steps steps; --lr, --optimizer and --beta do not apply) instead of the signed steps.")
@guarded
def noise(subject, steps, lr, optimizer, seed, clip, out_dir, force, as_json, target, pick, count, confidence, beta,
          universal, norm):
    """Additive noise, from zero, that makes the model predict --target for real images.

    Sources: the first --count test images of --class (or --digit), --count test images from
    --index on, or one --image; by default the first test image of each class other than --target.

    For each source the noisy image is changed by signed-gradient steps (--optimizer) to minimise
    the cross-entropy to --target (+ beta * mean squared noise), kept in [0, 1], and stops as soon
    as the model predicts --target with probability >= --confidence; with sign steps no pixel moves
    by more than --lr times the steps used. Stopping there does not make it the smallest such noise:
    --norm l2 (or linf) finds the smallest in that norm (FMN), on the pretrained MNIST model with
    28-36% less L2 (or 14-23% less L-infinity). The noise is the noisy image minus the original. Then
    the first source's noise is added to --universal random test images: how many are turned into
    --target (of those not already predicted so), how many change their prediction at all?

    Writes noise.png, images.npy (noisy), originals.npy, noise.npy, universal.png and result.json.
    """
    subject = subject(command="attack noise")
    pick = pick or Pick()  # sources: the first --count test images of a class, from --index on, or a picture
    options = noise_exp.Options(target=target, source_class=pick.class_name, index=pick.index, image=pick.image,
                                count=count, steps=steps, lr=lr, optimizer=optimizer,
                                confidence=confidence, beta=beta, universal=universal, seed=seed, clip=clip, norm=norm)
    _run(noise_exp, subject, options, "noise", out_dir, force, as_json, "noise")


@attack.command()
@subject_options
@click.option("--norm", type=click.Choice(["l2", "linf"]), default=default_of(minimal_exp.Options, "norm"),
              show_default=True, help="The norm to minimise.")
@click.option("--target", default=None, callback=check_class_spec, metavar="NAME|N",
              help="Reach this class (default: any class other than the true one).")
@click.option("--count", type=click.IntRange(min=1), default=default_of(minimal_exp.Options, "count"),
              show_default=True, help="The first N test images (those of --target skipped).")
@click.option("--steps", type=click.IntRange(min=1), default=default_of(minimal_exp.Options, "steps"),
              show_default=True, help="FMN steps.")
@click.option("--fab/--no-fab", default=default_of(minimal_exp.Options, "fab"), show_default=True,
              help="Without --target, also run FAB-T (AutoAttack's minimal-norm attack) and keep, per image, the "
                   "smaller perturbation of the two.")
@out_options("attack-minimal")
@json_option
@guarded
def minimal(subject, norm, target, count, steps, fab, out_dir, force, as_json):
    """The smallest perturbation that changes each test image's prediction (or reaches --target).

    By the fast minimum-norm attack (FMN, Pintor et al. 2021: normalised gradient steps inside an
    eps-ball that grows until the goal is met and then shrinks), then a bisection to the decision
    boundary; pixels stay in [0, 1]. Without --target, FAB-T (Croce & Hein 2020) runs too and the
    smaller of the two is kept per image (result.json says which found it). The median of the
    norms is the model's robustness in one number. Writes norms.png (histogram), examples.png, images.npy, originals.npy and result.json
    (every image's norm; null where none was found).

    \b
    Example:  kerascnn attack minimal --model saved_models/cnn_bn --norm linf
    """
    subject = subject(command="attack minimal")
    options = minimal_exp.Options(norm=norm, target=target, count=count, steps=steps, fab=fab)
    _run(minimal_exp, subject, options, f"minimal {norm}", out_dir, force, as_json, "minimal")


@attack.command()
@subject_options
@click.option("--target", default=None, callback=check_class_spec, metavar="NAME|N",
              help="The class to push towards (default: 4, or the last class).")
@click.option("--norm", type=click.Choice(["linf", "l2"]), default=default_of(universal_exp.Options, "norm"),
              show_default=True, help="The budget's norm.")
@click.option("--eps", type=float, default=default_of(universal_exp.Options, "eps"), callback=finite(0, low_open=True),
              help="The budget (default: the norm of the one-image noise, so both are compared at the same budget).")
@click.option("--fit", type=click.IntRange(min=1), default=default_of(universal_exp.Options, "fit"), show_default=True,
              help="Training images the universal noise is fitted on.")
@click.option("--count", type=click.IntRange(min=1), default=default_of(universal_exp.Options, "count"),
              show_default=True, help="Held-out test images both noises are measured on.")
@click.option("--epochs", type=click.IntRange(min=1), default=default_of(universal_exp.Options, "epochs"),
              show_default=True, help="Passes over the fitting images.")
@click.option("--seed", type=int, default=default_of(universal_exp.Options, "seed"), show_default=True,
              help="Seeds the order of the fitting batches.")
@click.option("--noise-steps", type=click.IntRange(min=1), default=default_of(universal_exp.Options, "noise_steps"),
              show_default=True, help="Steps of the one-image noise (the noise command's; it stops early at its goal).")
@out_options("attack-universal")
@json_option
@guarded
def universal(subject, target, norm, eps, fit, count, epochs, seed, noise_steps, out_dir, force, as_json):
    """A real universal perturbation towards --target, beside the assignment's one-image noise.

    One noise within the --eps ball of --norm is fitted on --fit training images by stochastic
    gradient over batches, projected back onto the ball after every step (Shafahi et al. 2020).
    The assignment's noise (made for the first test image of another class, then added to others)
    is set beside it at the same budget. Both are measured on --count held-out test images: the
    fraction predicted as --target, turned into it (of those not already predicted so), changed.
    Writes universal.png, universal_noise.npy, one_image_noise.npy and result.json (per class too).
    """
    subject = subject(command="attack universal")
    options = universal_exp.Options(target=target, norm=norm, eps=eps, fit=fit, count=count, epochs=epochs, seed=seed,
                                    noise_steps=noise_steps)
    _run(universal_exp, subject, options, "universal", out_dir, force, as_json, "universal", show_done=False)
