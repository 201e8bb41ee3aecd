"""`kerascnn evaluate`: test accuracy, per-class accuracy, confusion (kerascnn.experiments.evaluation)."""
from __future__ import annotations

import click

from cli.common import guarded, subject_options
from cli.output import emit, full_paths, json_option, out_options
from kerascnn.outputs.paths import shown_text


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
    line = f"model {subject.path} on {subject.task.name} ({subject.task.describe()})"
    click.echo(shown_text(line, full=full_paths()), err=as_json)  # relative paths unless --full-paths
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [evaluate]
