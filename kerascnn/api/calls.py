"""What every public function shares: options checked against the experiment's Options dataclass
(the one home of the defaults, which the CLI reads too), a signature that shows them, a tqdm.auto
progress bar (a widget in Jupyter, a line in a terminal), and the run itself."""
from __future__ import annotations

import contextlib
import dataclasses
import inspect

from kerascnn.errors import BadValue


def default_of(options_class, name: str):
    spec = options_class.__dataclass_fields__[name]
    return spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default


def build_options(options_class, given: dict, function: str, exclude=(), **fixed):
    """`options_class(**given, **fixed)`, after refusing a keyword that is not one of its fields."""
    allowed = [f.name for f in dataclasses.fields(options_class) if f.name not in exclude]
    for name in given:
        if name not in allowed:
            raise BadValue(name, f"is not an option of {function}: choose from {', '.join(allowed)}")
    return options_class(**given, **fixed)


def with_options(options_class, exclude=()):
    """Decorates a function whose `**options` are `options_class`'s fields: its signature (help(),
    the API reference, a notebook's completion) lists them with their defaults."""
    def decorate(func):
        params = list(inspect.signature(func).parameters.values())
        var = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
        fixed = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
        taken = {p.name for p in fixed}
        extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default_of(options_class, f.name))
                 for f in dataclasses.fields(options_class) if f.name not in exclude and f.name not in taken]
        tail = [p for p in fixed if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name == "progress"]
        head = [p for p in fixed if p not in tail]
        func.__signature__ = inspect.Signature(head + extra + tail) if var else inspect.signature(func)
        func.options_class = options_class
        return func
    return decorate


@contextlib.contextmanager
def progress_bar(show: bool, label: str, steps: int | None):
    """Yields a `progress(steps_done, images_done, total)` callback drawing a tqdm.auto bar of
    `steps` (None when `show` is False: the experiment then reports nothing)."""
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc=label, leave=False)
    try:
        def progress(steps_done: int, images_done: int = 0, total: int = 0) -> None:
            if steps_done > bar.n:
                bar.update(steps_done - bar.n)
        yield progress
    finally:
        bar.close()


def percent(progress):
    """A progress callback counted in images, as a bar of 100 steps (percent done)."""
    if progress is None:
        return None
    return lambda _steps, done, total: progress(100 * done // max(total, 1), done, total)


def check_batch_size(batch_size, param: str = "batch_size"):
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BadValue(param, f"must be a whole number of at least 1, got {batch_size!r}")
    return batch_size
