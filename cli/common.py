"""What every command shares: quiet TensorFlow start-up, one-line errors, the common options.

Nothing here imports TensorFlow at import time, so `kerascnn --help` answers at once.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys

import click

from kerascnn import DEFAULT_MODEL, UserError


def quiet_tensorflow() -> None:
    """Imports TensorFlow with its start-up chatter (oneDNN, CUDA probing) kept off the terminal.

    TF 2.21 writes those lines through absl before any log level applies, so stderr is pointed at
    /dev/null while it starts. Set KERASCNN_VERBOSE_TF=1 to see them.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("KERASCNN_VERBOSE_TF"):
        import tensorflow  # noqa: F401
    else:
        with _stderr_to_devnull():
            import tensorflow as tf

            tf.config.list_physical_devices()  # device probing logs too: do it now, quietly
            import keras  # noqa: F401  (its start-up is chatty too)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)  # tfds' warnings about folders it looked into


@contextlib.contextmanager
def _stderr_to_devnull():
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (e.g. under a test runner)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def guarded(func):
    """Runs a command body with TensorFlow quietly imported; a UserError or a bad value becomes one
    line on stderr and exit status 1 (the error's own exit_code: 130 for an interrupted training),
    never a traceback."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            quiet_tensorflow()
            return func(*args, **kwargs)
        except UserError as e:
            error = click.ClickException(str(e))
            error.exit_code = e.exit_code
            raise error from None
        except ValueError as e:  # library argument checks (attacks, occlusion) raise ValueError
            raise click.ClickException(str(e).splitlines()[0] if str(e) else "invalid value") from None
    return wrapper


def model_option(func):
    return click.option(
        "--model", "model_path", type=click.Path(dir_okay=True), default=None,
        help=f"A .keras model file (or a folder holding model.keras). Default: the pretrained "
             f"{DEFAULT_MODEL.parent.name}/{DEFAULT_MODEL.name} shipped in saved_models/.")(func)


def data_dir_option(func):
    return click.option(
        "--data-dir", type=click.Path(file_okay=False), default=None,
        help="A tensorflow_datasets folder, or a folder holding the four MNIST IDX files "
             "(gzipped or not). Default: $TFDS_DATA_DIR, else tfds' own folder (downloading if needed).")(func)


INDEX_ORDER = ("the position in the MNIST test split as the data source stores it (tensorflow-datasets' "
               "own shuffled order by default; the original file order with an IDX --data-dir)")


def image_options(func):
    """--digit / --index / --image: the image a command looks at (exactly one of them)."""
    func = click.option("--image", "image_file", type=click.Path(dir_okay=False), default=None,
                        help="Your own picture (PNG or JPEG, any size): made greyscale, 28x28, [0, 1], "
                             "and inverted if its background is light.")(func)
    func = click.option("--index", type=int, default=None, help=f"Test image number I: {INDEX_ORDER}.")(func)
    func = click.option("--digit", type=int, default=None,
                        help="The first test image of this class (0-9).")(func)
    return func


def choose_image(digit: int | None, index: int | None, image_file: str | None, data_dir: str | None = None):
    """(image (28, 28, 1) float32 in [0, 1], label or None, index or None, description) from the options."""
    from kerascnn import data

    given = sum(v is not None for v in (digit, index, image_file))
    if given != 1:
        raise UserError("choose exactly one image: --digit D, --index I or --image FILE")
    if image_file is not None:
        return data.load_image_file(image_file), None, None, os.path.basename(image_file)
    images, labels = data.load_test(data_dir)
    i = data.pick(labels, digit=digit, index=index)
    return images[i], int(labels[i]), i, f"test image {i} (a {labels[i]})"


def echo_json(obj) -> None:
    from kerascnn.store import _json_default

    click.echo(json.dumps(obj, indent=2, default=_json_default))
