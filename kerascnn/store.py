"""Saving and loading: every file is written whole or not at all (temporary name, then rename);
an OSError while writing becomes one line (WriteError); every JSON is strict (no NaN).

Models, JSON, CSV, NumPy arrays and figures go through here, and so does the SavedModel export.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerascnn import DEFAULT_MODEL, UserError


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
def custom_objects() -> dict:
    """The project's own Keras classes a checkpoint may name (its optimizer and step recorder)."""
    from kerascnn import training

    return {"FusedAdam": training.FusedAdam, "StepRecorder": training.StepRecorder}


def save_model(model, path) -> Path:
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """The model file to load: `path`, or the pretrained default. Relative paths are from the cwd."""
    path = Path(path).expanduser() if path else DEFAULT_MODEL
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if not path.exists():
        hint = " (the pretrained default: train one with `kerascnn train`)" if path == DEFAULT_MODEL else ""
        raise UserError(f"model file not found: {path}{hint}")
    if not path.is_file():
        raise UserError(f"--model {path} is not a file")
    return path


def load_model(path: str | os.PathLike | None = None, compile: bool = False):
    """Loads a `.keras` model (default: the pretrained saved_models/cnn/model.keras).

    A missing, truncated or foreign file raises UserError with one line saying so.
    """
    path = resolve_model_path(path)
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not a Keras model file (.keras zip archive)")
    import keras

    try:
        model = keras.models.load_model(path, compile=compile, custom_objects=custom_objects())
    except Exception as e:  # Keras raises ValueError, KeyError, OSError... for broken archives
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load model {path}: {first}") from None
    if tuple(model.input_shape[1:]) != (28, 28, 1) or model.output_shape[-1] != 10:
        raise UserError(f"{path}: expected a model from (28, 28, 1) images to 10 logits, "
                        f"got {model.input_shape} -> {model.output_shape}")
    return model


# ---------------------------------------------------------------------------- SavedModel export
@dataclass
class ExportResult:
    path: Path
    max_abs_diff_logits: float
    max_abs_diff_probabilities: float
    checked_images: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return max(self.max_abs_diff_logits, self.max_abs_diff_probabilities) <= self.tolerance


def export_savedmodel(model, out_dir, check_images: np.ndarray, tolerance: float = 1e-5) -> ExportResult:
    """Writes a TensorFlow SavedModel whose `serving_default` maps `images` float32 (None, 28, 28, 1)
    in [0, 1] to `logits` and `probabilities` (N, 10); then reloads it with tf.saved_model.load and
    compares its outputs with the Keras model's on `check_images`.

    The SavedModel is written to a temporary folder beside `out_dir` and moved into place only after
    the check passes; an existing `out_dir` is replaced.
    """
    import tensorflow as tf

    out_dir = Path(out_dir)
    ensure_dir(out_dir.parent if str(out_dir.parent) else Path("."))
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} exists and is not a folder")

    class Serving(tf.Module):
        def __init__(self, keras_model):
            super().__init__()
            self.model = keras_model

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")])
        def serve(self, images):
            logits = tf.cast(self.model(images, training=False), tf.float32)
            return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    module = Serving(model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})
        reloaded = tf.saved_model.load(str(tmp))
        batch = tf.constant(check_images, tf.float32)
        served = reloaded.signatures["serving_default"](images=batch)
        logits = model(batch, training=False).numpy().astype(np.float64)
        probs = tf.nn.softmax(logits).numpy()
        result = ExportResult(
            out_dir,
            float(np.max(np.abs(served["logits"].numpy() - logits))),
            float(np.max(np.abs(served["probabilities"].numpy() - probs))),
            len(check_images), tolerance)
        if not result.ok:
            raise UserError(f"exported model differs from the Keras model by "
                            f"{result.max_abs_diff_logits:.3g} (> {tolerance}); nothing written")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
