"""kerascnn: study a classic MNIST CNN end to end, one command per experiment."""
import click

from kerascnn import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kerascnn")
def cli():
    """Train, count, inspect, attack and export a classic MNIST CNN.

    \b
    Start:    kerascnn train              (5 epochs, about a minute on two CPU cores)
    Count:    kerascnn summary
    Look:     kerascnn filters | activations --digit 7 | occlude --digit 7
    Fool:     kerascnn attack nontargeted | targeted --target 7 | noise --target 4
    Study:    kerascnn compare | report
    Ship:     kerascnn export --out exported/

    Commands that take --model default to the pretrained saved_models/cnn/model.keras.
    """


def _register():
    from cli import attack, core, inspection, study

    for module in (core, inspection, study):
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(attack.attack)


_register()
