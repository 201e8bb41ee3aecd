"""Export a Keras classifier for other runtimes; every artifact is run by its real consumers first.

One contract for every format: input `images` float32 (None, H, W, C) in [0, 1], outputs `logits`
and `probabilities` float32 (None, K), and the K class names inside the artifact.

- savedmodel: a folder from Keras' ExportArchive with one signature, `serving_default` (the contract);
  the class names are the string variable `tf.saved_model.load(dir).class_names[0]` (K,) and
  `assets.extra/class_names.txt`, one a line. Run by tf.saved_model.load, by the TFLite converter +
  interpreter, and by the TF1 session loader (the TF Serving kind).
- onnx: a `.onnx` file from `model.export(format="onnx")` (tf2onnx), run by onnxruntime.
- litert: a `.tflite` file from `model.export(format="litert")`, run by ai_edge_litert's interpreter.
  Both files carry {"class_names", ...} as JSON under the metadata key `kerascnn`.

A mixed-precision model is exported as its float32 twin (same weights, float32 compute: ONNX Runtime
and TFLite have no bfloat16 kernels); the checks compare with the twin.

The artifact is built under a hidden name beside `out` and renamed onto it once checked. `out` may
already be an empty folder (savedmodel) or an earlier export of the same format (a folder holding
`.kerascnn-export.json`, or a file carrying the `kerascnn` metadata); anything else is left alone.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kerascnn import __version__
from kerascnn.errors import UserError, first_line
from kerascnn.exporting import consumers, formats
from kerascnn.model.twin import float32_twin
from kerascnn.outputs import store
from kerascnn.outputs.folders import pid_alive

FORMATS = ("savedmodel", "onnx", "litert")
MARKER = ".kerascnn-export.json"  # in a SavedModel folder: we wrote it, and what it holds
METADATA_KEY = formats.METADATA_KEY  # the same for a .onnx or .tflite file, in its metadata
_SUFFIX = {"savedmodel": "", "onnx": ".onnx", "litert": ".tflite"}
_EXTRA = {"savedmodel": (), "onnx": ("tf2onnx", "onnx", "onnxruntime"), "litert": ("ai_edge_litert",)}


@dataclass
class Check:
    """One consumer's outputs on the check images, compared with the Keras model's."""
    consumer: str                  # "tf.saved_model.load", "TFLite interpreter", "onnxruntime", ...
    max_abs_diff_logits: float
    max_abs_diff_probabilities: float
    argmax_agreement: float        # fraction of images with the same top class, in [0, 1]
    tolerance: float
    ok: bool


@dataclass
class ExportResult:
    path: Path                     # the artifact, in place
    format: str                    # one of FORMATS
    checks: list[Check] = field(default_factory=list)
    images: int = 0                # how many images each consumer ran
    images_kind: str = "test images"          # or "random images"
    float32_twin_diff: float | None = None    # mixed precision only: max |logits diff|, twin vs model

    def to_dict(self) -> dict:
        return {**asdict(self), "path": os.fspath(self.path)}


def export(model, out: str | os.PathLike, *, format: str = "savedmodel", class_names: Sequence[str],
           check_images: np.ndarray, images_kind: str = "test images", tolerance: float = 1e-4) -> ExportResult:
    """Writes `model` (images (N, H, W, C) float32 in [0, 1] -> logits (N, K), any dtype policy) to
    `out` in `format`, once every consumer of the format has run it on `check_images` ((N, H, W, C),
    N >= 1) within `tolerance` of the Keras model (max |difference| of logits and of probabilities)
    and with its argmax on every image. Otherwise raises UserError, and nothing is written.
    """
    if format not in FORMATS:
        raise UserError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    for module in _EXTRA[format]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(f"format {format!r} needs the export extra ({module} is missing): "
                            f'pip install "kerascnn[export]"') from None
    if not tolerance >= 0:
        raise UserError(f"tolerance must be >= 0, not {tolerance}")
    shape, names = _model_shape(model, class_names)
    images = np.asarray(check_images, dtype=np.float32)
    if images.ndim != 4 or not len(images) or any(m not in (None, i) for m, i in zip(shape, images.shape[1:])):
        raise UserError(f"check_images must be (N >= 1, {', '.join(map(str, shape))}), not {images.shape}")
    out = _target(out, format)

    import tensorflow as tf
    twin = float32_twin(model)
    logits = np.asarray(twin.predict(images, batch_size=256, verbose=0), np.float32)
    probabilities = tf.nn.softmax(logits).numpy()
    twin_diff = None if twin is model else float(np.max(np.abs(
        np.asarray(model.predict(images, batch_size=256, verbose=0), np.float32) - logits)))
    info = {"format": format, "kerascnn": __version__, "class_names": names, "input_shape": list(shape)}
    tmp = out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")
    _clean_leftovers(out)
    _remove(tmp)
    try:
        try:
            formats.write(format, formats.serving_model(twin, shape), tmp, info)
        except OSError as e:  # a full disk, a read-only folder: told like every other write
            raise store.WriteError(store.describe_os_error(e, f"writing {out}", "nothing was changed")) from None
        except Exception as e:  # the exporter's own failure (an op it cannot convert, ...)
            raise UserError(f"exporting to {format} failed: {first_line(e)}") from None
        checks = []
        for consumer, run in consumers.for_format(format):
            try:
                got = run(tmp, images)
            except Exception as e:  # the consumer cannot run the artifact at all
                raise UserError(f"{consumer} cannot run the {format} export: {first_line(e)}; "
                                "nothing written") from None
            checks.append(_compare(consumer, got, logits, probabilities, tolerance))
        for c in checks:
            if not c.ok:
                raise UserError(f"the {format} export differs from the Keras model in {c.consumer}: max |logits diff| "
                                f"{c.max_abs_diff_logits:.3g}, max |probabilities diff| "
                                f"{c.max_abs_diff_probabilities:.3g} (tolerance {tolerance:g}), same argmax on "
                                f"{c.argmax_agreement:.1%} of {len(images)} {images_kind}; nothing written")
        if format == "savedmodel":
            info.update(checks=[asdict(c) for c in checks], images=len(images), images_kind=images_kind)
            (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        _put_in_place(tmp, out)
    finally:
        _remove(tmp)
    return ExportResult(out, format, checks, len(images), images_kind, twin_diff)


def _clean_leftovers(out: Path) -> None:
    """Removes the temporaries of killed exports to `out` (`.NAME.partial-<pid>` of a dead pid)."""
    import re


    pattern = re.compile(rf"\.{re.escape(out.stem)}\.partial-(\d+){re.escape(out.suffix)}")
    for entry in out.parent.glob(f".{out.stem}.partial-*"):
        found = pattern.fullmatch(entry.name)
        if found and not pid_alive(int(found[1])):
            _remove(entry)


def read_class_names(path: str | os.PathLike) -> list[str]:
    """The class names inside an artifact that `export` wrote (any format)."""
    info = _read_info(Path(path))
    if info is None:
        raise UserError(f"{path} is not an export written by kerascnn")
    return list(info["class_names"])


# ---------------------------------------------------------------------------- arguments and places
def _model_shape(model, class_names) -> tuple[tuple, list[str]]:
    try:
        in_shape, out_shape = tuple(model.input_shape), tuple(model.output_shape)
    except (AttributeError, ValueError):
        raise UserError("model must be a built Keras model with one input and one output") from None
    if len(in_shape) != 4 or len(out_shape) != 2 or out_shape[1] is None:
        raise UserError(f"model must map (N, H, W, C) images to (N, K) logits, not {in_shape} -> {out_shape}")
    names = [str(n) for n in class_names]
    if len(names) != out_shape[1] or not all(n and "\n" not in n for n in names):
        raise UserError(f"class_names must be {out_shape[1]} non-empty one-line names, one per model output, "
                        f"not {len(names)}")
    return in_shape[1:], names


def _target(out, format: str) -> Path:
    """`out` resolved (so '.', '..' and '~' work), once what is there already may be replaced."""
    path = Path(os.path.expanduser(os.fspath(out))).resolve()
    suffix = _SUFFIX[format]
    if not path.name:
        raise UserError(f"out {os.fspath(out)!r} names no file or folder that can be written")
    if suffix and path.suffix != suffix:
        raise UserError(f"out must end with {suffix} for format {format!r}, not {path.name!r}")
    if path.exists():
        if suffix and path.is_dir():
            raise UserError(f"out {path} is a folder; format {format!r} writes one {suffix} file")
        if not suffix and not path.is_dir():
            raise UserError(f"out {path} exists and is not a folder; format 'savedmodel' writes a folder")
        if not (path.is_dir() and not any(path.iterdir())) and (_read_info(path) or {}).get("format") != format:
            raise UserError(f"out {path} exists and is not an earlier {format} export; "
                            "choose another path or remove it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create folder {path.parent}: {e.strerror or e}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UserError(f"folder {path.parent} is not writable")
    return path


def _read_info(path: Path) -> dict | None:
    """What an earlier export says about itself; None for anything we did not write."""
    try:
        if path.is_dir():
            return json.loads((path / MARKER).read_text())
        if path.suffix == ".onnx":
            props = importlib.import_module("onnx").load(os.fspath(path), load_external_data=False).metadata_props
            return json.loads({p.key: p.value for p in props}[METADATA_KEY])
        if path.suffix == ".tflite":
            from tensorflow.lite.python import schema_py_generated as schema

            flat = schema.Model.GetRootAsModel(path.read_bytes(), 0)
            for entry in (flat.Metadata(i) for i in range(flat.MetadataLength())):
                if entry.Name() == METADATA_KEY.encode():
                    return json.loads(flat.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except Exception:  # unreadable, foreign or broken: not ours
        pass
    return None


def _put_in_place(tmp: Path, out: Path) -> None:
    if tmp.is_dir() and out.is_dir():  # a folder is not renamed onto a non-empty one: swap them
        old = out.with_name(f".{out.stem}.old-{os.getpid()}{out.suffix}")
        _remove(old)
        os.replace(out, old)
        os.replace(tmp, out)
        _remove(old)
    else:
        os.replace(tmp, out)


def _remove(path: Path) -> None:
    """Removes one of our temporary names, if it is there."""
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _compare(consumer: str, got: dict, logits: np.ndarray, probabilities: np.ndarray, tolerance: float) -> Check:
    got_logits, got_probabilities = (np.asarray(got[k], np.float64) for k in ("logits", "probabilities"))
    if got_logits.shape != logits.shape or got_probabilities.shape != logits.shape:
        raise UserError(f"{consumer} gave {got_logits.shape} logits, not {logits.shape}; nothing written")
    d_logits = float(np.max(np.abs(got_logits - logits)))
    d_probabilities = float(np.max(np.abs(got_probabilities - probabilities)))
    agreement = float(np.mean(np.argmax(got_logits, 1) == np.argmax(logits, 1)))
    ok = max(d_logits, d_probabilities) <= tolerance and agreement == 1.0  # NaN is not ok
    return Check(consumer, d_logits, d_probabilities, agreement, tolerance, ok)
