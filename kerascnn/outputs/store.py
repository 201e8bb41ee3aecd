"""Saving and loading: every file is written whole or not at all (temporary name, then rename);
an OSError while writing becomes one line (WriteError); every JSON is strict (no NaN).

Models, JSON, CSV, NumPy arrays and figures go through here. Nothing here loads a model
(kerascnn.model.subject) or knows what a command is (kerascnn.outputs.folders).
"""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from kerascnn.errors import UserError

# ---------------------------------------------------------------------------- OS errors
_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def describe_os_error(e: OSError, doing: str, outcome: str | None = None) -> str:
    """One line for a user: `no space left on device while writing out/model.keras[; outcome]`.

    `doing` completes "while ...", e.g. "writing out/model.keras"; `outcome` says what was kept,
    e.g. "nothing was changed", when the caller knows it.
    """
    reason = _REASONS.get(e.errno)
    if reason is None:
        reason = e.strerror or str(e) or type(e).__name__
        if reason[:1].isupper() and reason[1:2].islower():  # "Not a directory", not "EOF"
            reason = reason[0].lower() + reason[1:]
    return f"{reason} while {doing}" + (f"; {outcome}" if outcome else "")


class WriteError(UserError):
    """An OSError met while writing, told in one line (see describe_os_error)."""


@contextlib.contextmanager
def os_errors(doing: str, outcome: str | None = None):
    """Turns an OSError raised in the block into WriteError(describe_os_error(e, doing, outcome))."""
    try:
        yield
    except OSError as e:
        raise WriteError(describe_os_error(e, doing, outcome)) from None


# ---------------------------------------------------------------------------- strict JSON
def dumps_json(obj, *, indent: int | None = 2) -> str:
    """JSON text of `obj` that strict parsers accept: NaN and ±Infinity become null, at any depth
    (floats, numpy scalars and arrays alike); numpy values become numbers/lists, Paths strings.
    Anything else JSON cannot hold raises TypeError, and a non-finite float missed here ValueError."""
    return json.dumps(_finite(obj), indent=indent, allow_nan=False, default=_json_default)


def _finite(value):
    if isinstance(value, float):  # np.float64 included
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, np.generic):
        return _finite(value.item())
    if isinstance(value, dict):
        return {(k.item() if isinstance(k, np.generic) else k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return _finite(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# ---------------------------------------------------------------------------- atomic writes
def ensure_dir(path: str | os.PathLike) -> Path:
    """Creates folder `path` (and parents); WriteError (one line) when it cannot be made or written."""
    path = Path(path)
    with os_errors(f"creating folder {path}"):
        path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise WriteError(f"permission denied while writing into folder {path}")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path beside `path`; renames it onto `path` only if the block succeeds.

    The temporary is removed whatever happens (an exception, Ctrl-C); an OSError in the block or
    in the rename becomes WriteError `<reason> while writing PATH[; the earlier NAME was kept]`.
    """
    path = Path(path)
    ensure_dir(path.parent)
    doing, outcome = f"writing {path}", f"the earlier {path.name} was kept" if path.exists() else None
    with os_errors(doing, outcome):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    try:
        with os_errors(doing, outcome):
            os.close(fd)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the final file gets the usual mode
            yield Path(tmp)
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> Path:
    """Writes dumps_json(obj) (strict JSON: non-finite numbers as null) atomically."""
    return write_text(path, dumps_json(obj) + "\n")


def write_csv(path, rows: list[dict], fields: list[str]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in fields})
    return write_text(path, buffer.getvalue())


def read_csv(path) -> list[dict]:
    """Rows of a CSV written by write_csv; numbers come back as float, empty cells as None."""
    def value(cell):
        if cell == "":
            return None
        try:
            return float(cell)
        except ValueError:
            return cell
    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def column(rows: list[dict], key: str) -> np.ndarray:
    """One column of read_csv rows as float64, None (an empty cell) as NaN."""
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows], np.float64)


def save_npy(path, array: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(_Writer(f), array)
    return Path(path)


class _Writer:
    """Hides a real file from np.save, which then writes through f.write: its tofile() reports a
    full disk as "N requested and M written", with no errno to tell the user what happened."""

    def __init__(self, f):
        self.write = f.write


def save_figure(fig, path, dpi: int = 120) -> Path:
    """Saves a matplotlib Figure as PNG (atomically) and closes it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


# ---------------------------------------------------------------------------- models
def save_model(model, path) -> Path:
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def make_parents(folder: Path) -> list[Path]:
    """Makes `folder` and its missing ancestors; returns those it made, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made = []
    try:
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir()
                made.append(path)
    except BaseException:
        remove_made(made)
        raise
    return made


def remove_made(made: list[Path]) -> None:
    """Removes the folders make_parents made, innermost first, as long as they are empty."""
    for path in reversed(made):
        try:
            path.rmdir()
        except OSError:
            return
