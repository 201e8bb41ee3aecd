"""`kerascnn evaluate`: test accuracy, per-class accuracy, confusion (kerascnn.experiments.evaluation)."""
from __future__ import annotations

import click

from cli.common import guarded, subject_options
from cli.output import emit, json_option, out_options


@click.command()
@subject_options
@out_options("evaluate")
@json_option
@guarded
def evaluate(subject, out_dir, force, as_json):
    """Test accuracy and loss, per-class accuracy, a confusion matrix and a grid of predictions.

    Works on any classifier with its dataset (--dataset / --data-dir); a model ending in a softmax
    is read through its logits. Writes OUT/confusion.png, predictions.png and result.json.
    """

    import kerascnn as kc

    subject = subject(command="evaluate")
    result = kc.evaluate(subject)
    click.echo(f"model {subject.path} on {subject.task.name} ({subject.task.describe()})", err=as_json)
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [evaluate]
