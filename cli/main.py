"""kerascnn: study any Keras image classifier end to end, one command per experiment."""
import sys

import click

from cli import (
    activations,
    attack,
    certify,
    compare,
    concepts,
    corruptions,
    evaluation,
    explain,
    export,
    filters,
    occlusion,
    report,
    robustness,
    serve,
    summary,
    train,
)
from kerascnn import __version__


class OneLineErrors(click.Group):
    """A Click group whose usage errors (a bad option value, a missing argument) are one line:
    `Error: <what is wrong> (see 'kerascnn CMD --help')`, exit status 2, instead of Click's usage
    block. Command errors (ClickException) are already one line; Ctrl-C exits 130."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else "kerascnn"
            click.echo(f"Error: {e.format_message()} (see '{where} --help')", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Error: interrupted (Ctrl-C)", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kerascnn")
def cli():
    """Train, count, inspect, attack and export Keras image classifiers: the classic MNIST CNN by
    default, or your own model (--model) on any dataset (--dataset, --data-dir).

    \b
    Start:    kerascnn train              (5 epochs, about a minute on two CPU cores -> runs/cnn/)
    Count:    kerascnn summary
    Look:     kerascnn filters | activations --digit 7 | occlude --digit 7 | evaluate
              kerascnn filters --maximize --style lucid | filters --maximize --class all
    Explain:  kerascnn explain --digit 7 | explain --faithfulness | explain --attack noise
              kerascnn concepts --target 7   (TCAV: which concepts each class uses)
    Fool:     kerascnn attack nontargeted | targeted --target 7 | noise --target 4
    Robust:   kerascnn robustness | attack minimal | attack universal | transfer
              kerascnn certify   (randomized smoothing; train --noise-sd 0.25 first)
              kerascnn corruptions   (noise, blur, fog, rotation...: MNIST-C or ImageNet-C, severities 1-5)
              kerascnn train --adversarial pgd --eps 0.3   (adversarial training)
    Study:    kerascnn compare | report
    Ship:     kerascnn export --out exported/

    Commands that take --model default to the pretrained saved_models/cnn (MNIST). Every command
    writes into --out, by default runs/<command>/, and never deletes what it did not make.
    """


def _register():

    for module in (train, summary, evaluation, export, filters, activations, occlusion, explain, concepts, robustness,
                   certify, corruptions, compare, report, serve):
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(attack.attack)


_register()
