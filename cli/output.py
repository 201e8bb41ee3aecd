"""What every command shares in writing its outputs: --out and --force, --json, a Result's figures,
arrays and result.json written whole (Result.save), and whether the API's progress bars are drawn."""
from __future__ import annotations

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
    """--json (the command receives `as_json`) and --full-paths (kept in the context for `emit`)."""
    func = full_paths_option(func)
    return click.option("--json", "as_json", is_flag=True,
                        help="Print result.json instead of the table (messages go to stderr).")(func)


def _remember_full_paths(ctx, param, value):
    ctx.meta[FULL_PATHS] = bool(value)


#: Where --full-paths is kept in the Click context (the command's own signature does not change).
FULL_PATHS = "kerascnn.full_paths"


def full_paths_option(func):
    """--full-paths: absolute paths in the printed summary (default: relative to the working folder,
    or run and file names, kerascnn.outputs.paths). result.json keeps absolute paths either way."""
    return click.option("--full-paths", is_flag=True, expose_value=False, callback=_remember_full_paths,
                        help="Name files by absolute paths in the printed summary (default: relative to the "
                             "working folder, or by run and file name; result.json keeps absolute ones).")(func)


def full_paths() -> bool:
    """Whether the running command was given --full-paths (False outside a command)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get(FULL_PATHS))


def emit(result, out_dir: str, *, force: bool = False, as_json: bool = False) -> Path:
    """Writes a Python API Result into `out_dir` (`result.save`: figures, arrays, result.json, whole or
    not at all, the folder marked as its command's output), then prints its table and summary, or the
    JSON with `as_json`. The table names files relative to the working folder (or by run and file
    name) unless the command was given --full-paths; the JSON is result.json, absolute paths and all."""
    from kerascnn.outputs.paths import shown_text

    result.save(out_dir, force=force)
    if as_json:
        click.echo(store.dumps_json(result.to_dict()))
    else:
        click.echo(shown_text(result.table(), full=full_paths()))
    click.echo(f"wrote {out_dir}/: {' '.join(result.files)}", err=as_json)
    return Path(out_dir)


def on_terminal() -> bool:
    """Whether the Python API's progress bars are drawn (on stderr): on a terminal only, as ours are."""
    return _is_terminal(sys.stderr)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def echo_json(obj) -> None:

    click.echo(dumps_json(obj))
