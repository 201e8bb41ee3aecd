"""What every command shares in writing its outputs: --out and --force, --json, an experiment's
figures, arrays and result.json written whole (kerascnn.outputs.folders), and a progress bar on stderr."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from cli.common import RUNS
from kerascnn.outputs import store
from kerascnn.outputs.store import dumps_json


def out_options(folder: str):
    """--out (a folder; default runs/<folder>, the command's name: occlude, attack-noise) and --force."""
    def decorate(func):
        func = click.option("--force", is_flag=True,
                            help="Write into an --out folder that kerascnn did not make (its other files are kept).")(func)
        return click.option("--out", "out_dir", type=click.Path(file_okay=False), default=os.path.join(RUNS, folder),
                            show_default=True,
                            help="Output folder, replaced whole when it is this command's earlier output; "
                                 "a folder kerascnn did not make is refused (see --force).")(func)
    return decorate


def json_option(func):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print result.json instead of the table (messages go to stderr).")(func)


def emit(experiment, result, out_dir: str, command: str, *, force: bool = False, as_json: bool = False,
         protect=(), extra_json: dict | None = None, subjects=()) -> Path:
    """Writes an experiment's result as the Python API's `Result.save(out_dir)` writes it (figures,
    arrays, result.json, whole or not at all), then prints its table and summary, or the JSON with
    `as_json`. `command` is the command's name as typed (`occlude`, `attack noise`): the output
    folder is marked as its output. `subjects`: the models studied; their files are protected and
    result.json records their input domain."""
    from kerascnn.api.results import Result

    shown = result if isinstance(result, Result) else Result(experiment, result, command, subjects, extra_json, protect)
    shown.save(out_dir, force=force)
    if as_json:
        click.echo(store.dumps_json(shown.to_dict()))
    else:
        click.echo(shown.table())
    click.echo(f"wrote {out_dir}/: {' '.join(shown.files)}", err=as_json)
    return Path(out_dir)


@contextlib.contextmanager
def progress_bar(label: str, steps: int, show_done: bool = True):
    """A progress bar on stderr; yields the `progress(steps_done, images_done, total)` callback.
    Drawn only on a terminal: elsewhere (a log, a pipe) it prints nothing, since a bare label there is
    noise. The bar starts at the first report, so that a value refused before any work leaves the one
    line of its error alone."""
    if not _is_terminal(sys.stderr):
        yield lambda steps_done, images_done, total: None
        return
    with contextlib.ExitStack() as stack:
        bar, seen = [], [0]

        def progress(steps_done: int, images_done: int, total: int) -> None:
            if not bar:
                bar.append(stack.enter_context(click.progressbar(
                    length=steps, label=label, file=sys.stderr, show_pos=True, show_eta=False,
                    item_show_func=lambda item: item)))
            bar[0].update(steps_done - seen[0], f"{images_done}/{total} done" if show_done else None)
            seen[0] = steps_done

        yield progress


def on_terminal() -> bool:
    """Whether the Python API's progress bars are drawn (on stderr): on a terminal only, as ours are."""
    return _is_terminal(sys.stderr)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def scaled_progress(progress, steps: int = 100):
    """A progress(steps_done, images_done, total) callback for work counted in images: the bar's
    `steps` are the fraction of the images done."""
    return lambda _steps, done, total: progress(steps * done // max(total, 1), done, total)


def echo_json(obj) -> None:

    click.echo(dumps_json(obj))
