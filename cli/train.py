"""`kerascnn train`: the assignment's network, for any task."""
from __future__ import annotations

import functools
import sys

import click

from cli.common import default_of, finite, guarded, quiet_tensorflow, task_args, task_options
from kerascnn.errors import BadValue
from kerascnn.training import devices, runs
from kerascnn.training import devices as device_plan
from kerascnn.training import fit as training
from kerascnn.training.adversarial import ATTACKS, AdversarialRecipe
from kerascnn.api.runs import TRAIN_FIGURES
from kerascnn.training.config import LR_SCHEDULES, TrainConfig
from kerascnn.training.precision import PRECISIONS
from kerascnn.training.recipes import RECIPES



class Devices(click.ParamType):
    """--devices: "all" or a whole number >= 1 (kerascnn.training.devices says what they mean here)."""
    name = "all|N"

    def convert(self, value, param, ctx):

        value = int(value) if str(value).isdigit() else value
        try:
            devices.check(value)
        except BadValue as e:
            self.fail(e.message, param, ctx)
        return value


def recipe_options(func):
    """The training recipe's options, defaults read from TrainConfig (shared with `compare`)."""
    for option in reversed([
        click.option("--epochs", type=click.IntRange(min=1), default=default_of(TrainConfig, "epochs"), show_default=True),
        click.option("--batch-size", type=click.IntRange(min=1), default=default_of(TrainConfig, "batch_size"),
                     show_default=True),
        click.option("--lr", type=float, default=default_of(TrainConfig, "lr"), show_default=True,
                     callback=finite(0, low_open=True),
                     help="Adam's learning rate (the starting peak with --lr-schedule cosine)."),
        click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default=default_of(TrainConfig, "lr_schedule"),
                     show_default=True, help="cosine: decay from --lr to 0 over the run (+0.35 points of test "
                                             "accuracy over 3 seeds on MNIST); constant: the assignment's fixed rate; "
                                             "warmup_cosine: a linear rise from 0 to --lr over the first --warmup "
                                             "of the steps, then the cosine."),
        click.option("--val-size", type=click.IntRange(min=1), default=None,
                     help="Training images held out for validation (default: 10% of them, at most 5,000). "
                          "The test split is never used to choose anything."),
        click.option("--val-every", type=click.IntRange(min=0), default=default_of(TrainConfig, "val_every"),
                     show_default=True, help="Iterations between validation points in steps.csv (0: at epoch ends "
                                             "only); steps run 64 at a time, so a point lands at the end of the "
                                             "first block of 64 past each multiple."),
        click.option("--subset", type=click.IntRange(min=2), default=None,
                     help="Use only the first N training images (quick trials)."),
        click.option("--precision", type=click.Choice(PRECISIONS), default=default_of(TrainConfig, "precision"),
                     show_default=True, help="bf16: mixed bfloat16 (float32 weights, logits and loss); fp32: all "
                                             "float32; auto: bf16 on a GPU or a CPU with bf16 instructions."),
    ]):
        func = option(func)
    return task_options(func)


def terminal_progress(epochs: int):
    """A Keras callback drawing one Click progress bar per epoch: steps done of the epoch's steps
    (exact, though callbacks see every 64th step), then a line with the epoch's numbers."""
    import keras

    from kerascnn.training.callbacks import epoch_lines

    line = epoch_lines(click.echo, epochs)

    class TerminalProgress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            line.on_epoch_begin(epoch, logs)
            self.total = self.params.get("steps") or 0
            self.bar = click.progressbar(length=self.total, label=f"epoch {epoch + 1}/{epochs}", show_pos=True)
            self.bar.__enter__()
            self.done = 0

        def on_train_batch_end(self, batch, logs=None):
            now = min(batch + 1, self.total)
            self.bar.update(now - self.done)
            self.done = now

        def on_epoch_end(self, epoch, logs=None):
            self.bar.__exit__(None, None, None)
            line.on_epoch_end(epoch, logs)

    return TerminalProgress()


def adversarial_options(func):
    """--adversarial and the attack's settings (defaults: kerascnn.training.adversarial.AdversarialRecipe); the
    command receives `adversarial`, an AdversarialRecipe or None."""

    @click.option("--adversarial", type=click.Choice(ATTACKS), default=None,
                  help="Adversarial training (Madry et al.): fit on images attacked on the fly against the current "
                       "weights, pgd (--attack-steps steps from a random start) or fgsm (one step of 1.25 eps from a "
                       "random start, Wong et al. 2020). Each epoch costs about (attack steps + 1) clean epochs.")
    @click.option("--eps", type=float, default=None, callback=finite(0, low_open=True),
                  help=f"With --adversarial: the attack's radius (default {default_of(AdversarialRecipe, 'eps')}).")
    @click.option("--attack-norm", type=click.Choice(["linf", "l2"]), default=None,
                  help="With --adversarial: the ball's norm (default linf).")
    @click.option("--attack-steps", type=click.IntRange(min=1), default=None,
                  help=f"With --adversarial pgd: steps per batch (default {default_of(AdversarialRecipe, 'steps')}).")
    @click.option("--attack-step", type=float, default=None, callback=finite(0, low_open=True),
                  help="With --adversarial: the step size as a fraction of eps (default 2.5 / steps for pgd, 1.25 "
                       "for fgsm).")
    @click.option("--eps-ramp", type=float, default=None, callback=finite(0),
                  help=f"With --adversarial: epochs over which eps grows from 0 (default "
                       f"{default_of(AdversarialRecipe, 'ramp_epochs')}).")
    @functools.wraps(func)
    def wrapper(*args, adversarial, eps, attack_norm, attack_steps, attack_step, eps_ramp, **kwargs):
        given = {"eps": eps, "norm": attack_norm, "steps": attack_steps, "step_fraction": attack_step,
                 "ramp_epochs": eps_ramp}
        given = {k: v for k, v in given.items() if v is not None}
        if adversarial is None:
            if given:
                raise click.UsageError("--eps, --attack-norm, --attack-steps, --attack-step and --eps-ramp "
                                       "need --adversarial")
            return func(*args, adversarial=None, **kwargs)
        return func(*args, adversarial=AdversarialRecipe(adversarial, **given), **kwargs)
    return wrapper


@click.command()
@click.option("--recipe", default="assignment", show_default=True, metavar=f"[{'|'.join(RECIPES)}]",
              help="A named recipe: assignment (5 epochs, batch 16, Adam 1e-3, cosine) or fast (>= 99% test "
                   "accuracy in about 8 s of training on two CPU cores). Options given explicitly override it.")
@click.option("--batchnorm/--no-batchnorm", default=False, show_default=True,
              help="Insert batch normalisation after conv1, conv2 and fc1 (before their ReLU).")
@recipe_options
@click.option("--warmup", type=float, default=default_of(TrainConfig, "warmup"), show_default=True,
              callback=finite(0, 0.99), help="With --lr-schedule warmup_cosine: the fraction of the steps spent rising.")
@click.option("--label-smoothing", type=float, default=default_of(TrainConfig, "label_smoothing"), show_default=True,
              callback=finite(0, 0.99), help="Train against (1 - s) * one-hot + s / classes.")
@click.option("--noise-sd", type=float, default=default_of(TrainConfig, "noise_sd"), show_default=True,
              callback=finite(0), help="Gaussian data augmentation: add N(0, SD^2) to every training pixel "
                                       "(unclipped; Cohen et al.). What `kerascnn certify --sigma SD` needs.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the weights, the validation hold-out and the shuffling.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder. Default: runs/cnn (runs/cnn_bn with --batchnorm; runs/<dataset>_cnn for "
                   "other datasets). The shipped models are replaced only by naming them: --out saved_models/cnn.")
@click.option("--force", is_flag=True, help="Train into an --out folder that kerascnn did not make (its files are kept).")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard logs under OUT/tensorboard.")
@click.option("--devices", type=Devices(), default=default_of(TrainConfig, "devices"), show_default=True,
              help="Train on several devices with MirroredStrategy, --batch-size split across them: N GPUs, all "
                   "(every GPU TensorFlow sees), or without a GPU N logical CPU devices (for trying it; no "
                   "faster). Results match one device up to rounding; under a strategy Keras runs one step per "
                   "call (keras-team/keras#19246).")
@adversarial_options
@guarded
def train(recipe, batchnorm, epochs, batch_size, lr, lr_schedule, warmup, label_smoothing, noise_sd, val_size,
          val_every, subset, precision, dataset, data_dir, seed, out_dir, force, tensorboard, devices, adversarial):
    """Train the assignment's CNN with Adam and save it with its curves and metrics.

    The network (conv 32 3x3 - pool - conv 32 3x3 - pool - dense 500 - dense K) is built for the
    dataset's image shape and class count. The default recipe is the assignment's (5 epochs, batch
    16, Adam 1e-3, no batch norm) with the learning rate decayed along a cosine, in mixed bfloat16
    where the hardware has it (README's Speed section has the measured times).

    Writes OUT/model.keras, history.csv (per epoch), steps.csv (per iteration, with validation
    points), metrics.json (test accuracy, recipe, timings), loss.png, accuracy.png,
    predictions.png and confusion.png. On a terminal Keras draws its progress bar; otherwise one
    line per epoch is printed.

    --recipe fast trains one epoch instead (batch 64, a warm-up to lr 4e-3 then a cosine, label
    smoothing 0.1); options given explicitly override a recipe's values.

    With --adversarial, every training batch is replaced by attacked copies made on the fly (Madry
    et al.); the default output folder gets the attack's name (runs/cnn_pgd). The shipped
    saved_models/cnn_pgd was made by `kerascnn train --adversarial pgd --eps 0.3 --attack-steps 5
    --batch-size 64 --epochs 15 --out saved_models/cnn_pgd` (its metrics.json has the rest).

    --noise-sd SD trains on noisy copies (Gaussian data augmentation), as randomized smoothing
    needs: saved_models/cnn_smooth was made by `kerascnn train --noise-sd 0.25 --out
    saved_models/cnn_smooth` and is what `kerascnn certify` uses by default.

    --devices N trains on N GPUs (all: every GPU; without a GPU, N logical CPU devices) with
    MirroredStrategy, --batch-size split across them: one device's results up to rounding. Keras 3's
    fit has no multi-machine training (keras-team/keras#20585): split `kerascnn compare`'s seeds.

    Interrupted (Ctrl-C, or the process killed)? Run the same command again: it resumes from the
    last finished epoch. model.keras is only ever written whole; a diverging run (the loss is no
    longer finite) stops with an error and saves no model.
    """
    from pathlib import Path

    from click.core import ParameterSource

    from kerascnn.api.runs import run_config, train_config

    fields = dict(batchnorm=batchnorm, epochs=epochs, batch_size=batch_size,
                  lr=lr, lr_schedule=lr_schedule, warmup=warmup, label_smoothing=label_smoothing, noise_sd=noise_sd,
                  seed=seed, val_size=val_size, tensorboard=tensorboard, precision=precision,
                  val_every=val_every, subset=subset, adversarial=adversarial, devices=devices)
    ctx = click.get_current_context()  # the recipe's values stand unless an option was given explicitly
    fields = {k: v for k, v in fields.items()
              if k not in RECIPES.get(recipe, {}) or ctx.get_parameter_source(k) != ParameterSource.DEFAULT}
    fields |= {"dataset": dataset, "data_dir": data_dir}
    config = train_config(None, recipe, out_dir, **fields)
    quiet_tensorflow()
    replicas = device_plan.prepare(config.devices)  # logical CPU devices only before TensorFlow starts
    out, task, c = config.resolved_out_dir(), config.task, config
    runs.check_training_folder(out, force=force)
    data = task.splits(config.val_size, seed, subset)

    def starting():  # said once the folder is held: an unwritable --out is one line, nothing else
        click.echo(f"Training {'cnn_bn (batch norm)' if batchnorm else 'cnn'} on {task.name} {task.input_shape}, "
                   f"{task.num_classes} classes, recipe {recipe}: {c.epochs} epoch(s), batch {c.batch_size}, "
                   f"Adam lr {c.lr:g} ({c.lr_schedule}), "
                   f"{training.resolve_precision(c.precision)}, seed {seed}, {replicas} device(s) -> {out}/")
        for line in task.arrays().notices:
            click.echo(f"note: {line}")
        if adversarial is not None:
            click.echo(f"adversarial training: every batch replaced by {adversarial.describe()}")
        click.echo(f"data: {data.source}: {len(data.x_train):,} training, {len(data.x_val):,} validation, "
                   f"{len(data.x_test):,} test images")

    # On a terminal a bar per epoch (Keras' own overshoots its total with 64 steps per call and
    # shows the step recorder's meaningless val_batch_loss); elsewhere one line per epoch.
    from kerascnn.training.callbacks import epoch_lines

    progress = terminal_progress(c.epochs) if sys.stdout.isatty() else epoch_lines(click.echo, c.epochs)
    result = run_config(config, task, in_memory=False, force=force, notify=click.echo, callbacks=(progress,),
                        splits=data, starting=starting)
    click.echo(result.table())
    click.echo(f"wrote {out}/: model.keras history.csv steps.csv metrics.json " + " ".join(TRAIN_FIGURES))
    args = " ".join(x for x in (task_args(dataset, data_dir), f"--model {Path(out)}") if x)
    click.echo(f"next: kerascnn evaluate {args}   (or occlude, attack, report ... with the same options)")


COMMANDS = [train]
