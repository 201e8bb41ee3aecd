"""What every command shares: quiet TensorFlow start-up, one-line errors, the options that build a
Subject (--model, --dataset, --data-dir) and pick an image (writing outputs: cli.output).

Nothing here imports TensorFlow at import time, so `kerascnn --help` answers at once. Every option
value that can be checked without data is checked while the options are parsed (exit 2).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import sys
from pathlib import Path

import click

from cli.domain_options import domain_options
from kerascnn import RUNS as TRAIN_RUNS
from kerascnn.cpu import choose_kernels
from kerascnn.data.sources import check_dataset_exists, is_idx_folder
from kerascnn.data.tasks import Pick, Task, check_dataset_name
from kerascnn.errors import BadValue, UserError
from kerascnn.model.subject import Subject
from kerascnn.training.config import default_out_dir
from kerascnn.training.precision import share_gpus

#: Where a command writes when --out is not given: runs/<command>/ (ignored by git); training's own.
RUNS = str(TRAIN_RUNS)


# ---------------------------------------------------------------------------- TensorFlow, errors
def quiet_tensorflow() -> None:
    """Imports TensorFlow with its start-up chatter (oneDNN, CUDA probing) kept off the terminal.

    TF 2.21 writes those lines through absl before any log level applies, so stderr is pointed at
    /dev/null while it starts. Set KERASCNN_VERBOSE_TF=1 to see them. First the CPU kernels are
    chosen (kerascnn.cpu: oneDNN's where TensorFlow would run Eigen's); a change is said in one line.
    """
    if "tensorflow" not in sys.modules and (message := choose_kernels().message):  # once: TF starts below
        click.echo(message, err=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("KERASCNN_VERBOSE_TF"):
        import tensorflow  # noqa: F401
    else:
        with _stderr_to_devnull():
            import tensorflow as tf

            tf.config.list_physical_devices()  # device probing logs too: do it now, quietly
            share_gpus()  # memory growth: processes (--jobs, two commands at once) share a GPU
            import keras  # noqa: F401  (its start-up is chatty too)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)  # tfds' warnings about folders it looked into
    if not os.environ.get("KERASCNN_VERBOSE_TF"):
        # TensorFlow's "N out of the last N calls ... triggered tf.function retracing": every attack
        # function is traced once per shape signature, but once per model too, and a study of three
        # models (the report) makes TensorFlow count those first traces as retracing. Measured: no
        # function of ours traces twice for one model (experimental_get_tracing_count() == 1).
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")


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


#: Library parameters that the shared image options receive under another name (image_options'
#: --class is `class_name`; the noise experiment calls its sources' class `source_class`).
PARAM_ALIASES = {"source_class": "class_name", "image": "image_file"}


def flag_of(param: str) -> str:
    """The option of the running command whose parameter is `param` (`patch` -> `--patch`; `filter`
    -> `--filter`, whose Python name `filter_` keeps clear of the builtin)."""
    ctx = click.get_current_context(silent=True)
    names = (param, f"{param}_", PARAM_ALIASES.get(param))
    for p in (ctx.command.params if ctx else []):
        if p.name in names and getattr(p, "opts", None):
            return p.opts[0]
    return param


def guarded(func):
    """Runs a command body (which calls `quiet_tensorflow` before its first heavy import, after its
    cheap checks, or builds the subject, which does). The project's own errors become one
    line on stderr: a bad value (BadValue) exits 2 naming the option, like Click's own checks; any
    other UserError exits with its exit_code (1; 130 for an interrupted training); an OS error
    (disk full, read-only, permission) is one line, exit 1; Ctrl-C exits 130. Anything else is a
    bug and shows its traceback."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BadValue as e:
            error = click.ClickException(f"{flag_of(e.param)}: {e.message}")
            error.exit_code = e.exit_code
            raise error from None
        except UserError as e:
            error = click.ClickException(str(e))
            error.exit_code = e.exit_code
            raise error from None
        except OSError as e:
            from kerascnn.outputs.store import describe_os_error

            raise click.ClickException(describe_os_error(e, "running the command")) from None
        except KeyboardInterrupt:
            error = click.ClickException("interrupted (Ctrl-C); outputs of this command were not changed")
            error.exit_code = 130
            raise error from None
    return wrapper


# ---------------------------------------------------------------------------- parse-time checks
def default_of(options_class, field: str):
    """The default of `field` in an experiment's Options dataclass: the one home of defaults."""
    spec = options_class.__dataclass_fields__[field]
    return spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default


def finite(low: float | None = None, high: float | None = None, low_open: bool = False):
    """A Click callback accepting a finite float in [low, high] (or (low, high] with low_open)."""
    def check(ctx, param, value):
        if value is None:
            return value
        bad = not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low)) \
            or (high is not None and value > high)
        if bad:
            lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f"<= {high:g}"
            raise click.BadParameter(f"must be a finite number {' and '.join(x for x in (lo, hi) if x)}, got {value}")
        return value
    return check


def _check_dataset(ctx, param, value):

    try:
        return check_dataset_name(value)
    except BadValue as e:
        raise click.BadParameter(e.message) from None


def not_empty(hint: str):
    """A Click callback refusing an empty or blank value, saying what to give instead."""
    def check(ctx, param, value):
        if value is not None and not str(value).strip():
            raise click.BadParameter(f"is empty: {hint}")
        return value
    return check


check_class_spec = not_empty("give a class name or number")


# ---------------------------------------------------------------------------- the subject
def _check_data_dir(ctx, param, value):
    if not_empty("give a folder of images by class, of IDX files, or of tensorflow_datasets")(ctx, param, value) is None:
        return value
    if not os.path.isdir(value):
        raise click.BadParameter(f"{value} is not a folder")
    return value


def _one_task(func):
    """--dataset and --data-dir name the task two ways: given both, refuse (exit 2) rather than ignore one."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        explicit = ctx.get_parameter_source("dataset") == click.core.ParameterSource.COMMANDLINE
        if explicit and kwargs.get("data_dir") is not None:
            raise click.UsageError("give --dataset or --data-dir, not both (--data-dir holds its own dataset)")
        return func(*args, **kwargs)
    return wrapper


def task_options(func):
    """--dataset and --data-dir: the task (its images and classes)."""
    func = _one_task(func)
    func = click.option(
        "--data-dir", type=click.Path(file_okay=False), default=None, callback=_check_data_dir,
        help="A folder of images by class (DIR/train/<class>/*.png and DIR/test/<class>/*, or DIR/<class>/* "
             "split by seed), a folder of IDX files, or a tensorflow_datasets folder. Default: "
             "$TFDS_DATA_DIR, else tfds' own folder (downloading if needed).")(func)
    return click.option(
        "--dataset", default="mnist", show_default=True, callback=_check_dataset, metavar="NAME",
        help="A tensorflow-datasets image classification dataset: mnist, fashion_mnist, kmnist, cifar10, ...")(func)


def subject_options(func):
    """--model, --dataset, --data-dir; the command receives `subject`: a function that loads the
    model and its task when called (after the options are parsed, inside `guarded`)."""
    @task_options
    @click.option("--model", "model_path", type=click.Path(), default=None, callback=not_empty("give a .keras file or a run folder"),
                  help="A .keras image classifier, or a run folder of `kerascnn train` (holding model.keras). "
                       "Default: the pretrained saved_models/cnn for MNIST; runs/<dataset>_cnn otherwise.")
    @domain_options
    @functools.wraps(func)
    def wrapper(*args, model_path, dataset, data_dir, domain, **kwargs):
        return func(*args, subject=functools.partial(build_subject, model_path, dataset, data_dir,
                                                     out_dir=kwargs.get("out_dir"), force=kwargs.get("force", False),
                                                     domain=domain),
                    **kwargs)
    return wrapper


def say_domain(subject) -> None:
    """One line on stderr about the model's input domain when it is not the library's own [0, 1]
    (read off the model, or given); result.json records it either way."""
    if not subject.domain.identity:
        click.echo(subject.domain.notice(subject.name), err=True)
    if subject.twin_of is not None:
        click.echo(f"{subject.name} computes in {subject.twin_of}: the experiments run on its float32 twin "
                   f"(the same weights), so that gradients keep their precision", err=True)


def build_subject(model_path, dataset: str, data_dir, out_dir=None, force: bool = False, command: str | None = None,
                  domain=None):
    """The Subject of a command: the model (default: the task's pretrained or trained one) and its
    task, read in `domain` (None: as the model says; one line tells which). Given the command's --out
    and its name (as emit will mark the folder), the output folder's refusals come now, before any
    work: a refused --out costs nothing."""
    quiet_tensorflow()

    check_dataset_exists(dataset, data_dir)
    task = Task(dataset, data_dir)
    if model_path is None and not (dataset == "mnist" and data_dir is None):
        model_path = default_out_dir(task, False)
        if not (Path(model_path) / "model.keras").is_file():
            if task.mnist_shaped:
                click.echo(f"no --model: the shipped MNIST cnn serves {task.name} (28x28x1 images, 10 classes)",
                           err=True)
                model_path = None
            else:
                raise UserError(f"no model for {task.name}: pass --model, or train one first with "
                                f"`kerascnn train {task_args(dataset, data_dir)}` (it writes {model_path}/)")
    subject = Subject.load(model_path, task, domain=domain)
    say_domain(subject)
    if out_dir is not None and command is not None:
        from kerascnn.outputs.folders import check_output_folder

        check_output_folder(out_dir, command, force=force, protect=[subject.path])
    return subject


def task_args(dataset: str, data_dir) -> str:
    """The --dataset / --data-dir options that name a task, for commands shown to the user."""
    parts = [] if dataset == "mnist" else [f"--dataset {dataset}"]
    return " ".join(parts + ([f"--data-dir {data_dir}"] if data_dir else []))


def image_options(func=None, *, required: bool = True):
    """--class / --digit / --index / --image: the image a command looks at (exactly one); the
    command receives `pick` (a tasks.Pick). With required=False none may be given: `pick` is None."""
    if func is None:
        return functools.partial(image_options, required=required)

    @click.option("--image", "image_file", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="Your own picture (PNG or JPEG, any size), made the task's size and channels "
                       "(MNIST: greyscale, inverted if its background is light, framed like its digits).")
    @click.option("--index", type=click.IntRange(min=0), default=None,
                  help="Test image number I, in the data source's order: tensorflow-datasets' own "
                       "(shuffled for MNIST), the IDX files', or an image folder's sorted order.")
    @click.option("--digit", type=click.IntRange(0, 9), default=None, help="MNIST: the first test image of this digit.")
    @click.option("--class", "class_name", default=None, callback=check_class_spec, metavar="NAME|N",
                  help="The first test image of this class, by name (Sneaker) or number.")
    @functools.wraps(func)
    def wrapper(*args, class_name, digit, index, image_file, **kwargs):

        if digit is not None:
            params = click.get_current_context().params
            data_dir = params.get("data_dir")
            if params.get("dataset", "mnist") != "mnist" or (data_dir is not None and not is_idx_folder(data_dir)):
                raise click.BadParameter("is MNIST's: for this dataset use --class NAME|N", param_hint="'--digit'")
        given = sum(v is not None for v in (class_name, digit, index, image_file))
        if given == 0 and not required:
            return func(*args, pick=None, **kwargs)
        if given != 1:
            raise click.UsageError("choose exactly one image: --class NAME, --digit D, --index I or --image FILE")
        choice = Pick(class_name if digit is None else str(digit), index, image_file)
        return func(*args, pick=choice, **kwargs)
    return wrapper
