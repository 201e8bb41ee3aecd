"""kerascnn.exporting.exporter: every artifact runs in its consumers like the Keras model, or nothing is written.

Tiny models built here (a functional (28, 28, 1) -> 10 and a Sequential (32, 32, 3) -> 5), so that a
stray 28 or 10 in the exporter fails at once; every check recomputes the Keras model's logits itself.
"""
import importlib.util
import json
import os
import stat
import warnings

import numpy as np
import pytest

from kerascnn.errors import UserError
from kerascnn.exporting import consumers

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))
HAVE_LITERT = importlib.util.find_spec("ai_edge_litert") is not None
FORMATS = [
    "savedmodel",
    pytest.param("onnx", marks=pytest.mark.skipif(not HAVE_ONNX, reason="export extra not installed")),
    pytest.param("litert", marks=pytest.mark.skipif(not HAVE_LITERT, reason="export extra not installed")),
]
FILE_NAME = {"savedmodel": "exported", "onnx": "model.onnx", "litert": "model.tflite"}


def _functional_mnist():
    import keras

    images = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(images)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    return keras.Model(images, keras.layers.Dense(10)(keras.layers.Flatten()(x)))


def _sequential_rgb(dtype_policy="float32"):
    import keras

    return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(3, 3, activation="relu", dtype=dtype_policy),
                             keras.layers.MaxPooling2D(dtype=dtype_policy), keras.layers.Flatten(dtype=dtype_policy),
                             keras.layers.Dense(5, dtype=dtype_policy)])


@pytest.fixture(scope="module", params=["mnist", "rgb"])
def subject(request):
    """(model, class names, check images) for each tiny model."""
    import keras

    keras.utils.set_random_seed(0)
    model = _functional_mnist() if request.param == "mnist" else _sequential_rgb()
    names = [f"digit {i}" for i in range(10)] if request.param == "mnist" else ["cat", "dog", "fox", "owl", "elk"]
    images = np.random.default_rng(1).random((12, *model.input_shape[1:]), dtype=np.float32)
    return model, names, images


@pytest.fixture(scope="module")
def rgb():
    import keras

    keras.utils.set_random_seed(0)
    return _sequential_rgb(), list("abcde"), np.random.default_rng(2).random((6, 32, 32, 3), dtype=np.float32)


def _export(subject, out, **kwargs):
    from kerascnn.exporting.exporter import export

    model, names, images = subject
    return export(model, out, class_names=names, check_images=images, **kwargs)


def _consumer_outputs(format, path, images):
    """What the artifact's consumers give, run here without the exporter's own helpers."""
    import tensorflow as tf

    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
        return [dict(zip(["logits", "probabilities"], session.run(["logits", "probabilities"], {"images": images})))]
    if format == "litert":
        from ai_edge_litert.interpreter import Interpreter

        return [Interpreter(model_path=os.fspath(path)).get_signature_runner("serving_default")(images=images)]
    loaded = tf.saved_model.load(os.fspath(path)).signatures["serving_default"](images=tf.constant(images))
    tflite = tf.lite.TFLiteConverter.from_saved_model(os.fspath(path)).convert()
    with warnings.catch_warnings():  # tf.lite.Interpreter points to ai_edge_litert
        warnings.simplefilter("ignore", UserWarning)
        lite = tf.lite.Interpreter(model_content=tflite).get_signature_runner("serving_default")(images=images)
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        signature = tf.compat.v1.saved_model.loader.load(session, ["serve"], os.fspath(path)).signature_def
        served = signature["serving_default"]
        tf1 = session.run({k: v.name for k, v in served.outputs.items()}, {served.inputs["images"].name: images})
    return [{k: v.numpy() for k, v in loaded.items()}, lite, tf1]


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("format", FORMATS)
def test_every_consumer_runs_the_export_like_the_keras_model(subject, format, tmp_path):
    model, names, images = subject
    result = _export(subject, tmp_path / FILE_NAME[format], format=format)

    assert result.path == tmp_path / FILE_NAME[format] and result.format == format
    assert result.images == len(images) and result.images_kind == "test images"
    expected = {"savedmodel": ["tf.saved_model.load", "TFLite interpreter", "TF1 session loader"],
                "onnx": ["onnxruntime"], "litert": ["LiteRT interpreter"]}[format]
    assert [c.consumer for c in result.checks] == expected and all(c.ok for c in result.checks)
    assert json.loads(json.dumps(result.to_dict()))["format"] == format

    logits = np.asarray(model(images, training=False), np.float64)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for outputs in _consumer_outputs(format, result.path, images):
        assert np.max(np.abs(outputs["logits"] - logits)) <= 1e-4
        assert np.max(np.abs(outputs["probabilities"] - probabilities)) <= 1e-4
        assert (np.argmax(outputs["logits"], 1) == np.argmax(logits, 1)).all()
    assert sorted(os.listdir(tmp_path)) == [FILE_NAME[format]]  # no temporary left beside it


def test_tflite_s_documented_first_steps_work_on_the_saved_model(rgb, tmp_path):
    """TFLiteConverter.from_saved_model(dir).convert(), then the interpreter's first input: the snippet
    of TensorFlow Lite's guide, which a second signature broke (IndexError: no inputs)."""
    import tensorflow as tf

    out = _export(rgb, tmp_path / FILE_NAME["savedmodel"], format="savedmodel").path
    interpreter = tf.lite.Interpreter(model_content=tf.lite.TFLiteConverter.from_saved_model(os.fspath(out)).convert())
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()[0]
    assert tuple(details["shape"][1:]) == (32, 32, 3) and details["dtype"] == np.float32


@pytest.mark.parametrize("format", FORMATS)
def test_the_class_names_travel_inside_the_artifact(rgb, format, tmp_path):
    from kerascnn.exporting.exporter import read_class_names

    out = _export(rgb, tmp_path / FILE_NAME[format], format=format).path
    assert read_class_names(out) == list("abcde")
    if format == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(os.fspath(out))
        assert list(loaded.signatures) == ["serving_default"]  # one: TFLite's converter takes the first
        assert [n.decode() for n in loaded.class_names[0].numpy()] == list("abcde")
        assert (out / "assets.extra" / "class_names.txt").read_text().split("\n") == [*"abcde", ""]


def test_a_mixed_precision_model_is_exported_as_its_float32_twin(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = _sequential_rgb("mixed_bfloat16")
    images = np.random.default_rng(3).random((6, 32, 32, 3), dtype=np.float32)
    result = _export((model, list("abcde"), images), tmp_path / "sm")
    assert all(c.ok for c in result.checks)
    assert 0 < result.float32_twin_diff < 0.1  # bfloat16 rounding, not a different model


def test_the_checks_catch_the_old_hand_written_savedmodel(rgb, tmp_path):
    """The export the issue reports (a tf.Module around the Keras model) fails the new consumers."""
    import tensorflow as tf

    model, _, images = rgb

    class Serving(tf.Module):
        def __init__(self, keras_model):
            super().__init__()
            self.model = keras_model

        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32, name="images")])
        def serve(self, images):
            logits = tf.cast(self.model(images, training=False), tf.float32)
            return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    module = Serving(model)
    tf.saved_model.save(module, os.fspath(tmp_path / "old"), signatures={"serving_default": module.serve})
    reloaded = consumers._run_saved_model(tmp_path / "old", images)["logits"]
    assert np.allclose(reloaded, model(images), atol=1e-5)  # the only consumer the old check asked
    try:
        lite = consumers._run_tflite_converter(tmp_path / "old", images)["logits"]
    except Exception:
        lite = np.full(1, np.nan)
    assert not np.allclose(lite, model(images), atol=1e-4)  # weightless: NaN, or no run at all
    with pytest.raises(Exception, match="Could not find variable"):
        consumers._run_session(tmp_path / "old", images)


# ---------------------------------------------------------------------------- nothing written
def test_an_export_that_differs_is_refused_and_nothing_is_written(rgb, tmp_path, monkeypatch):
    real = consumers._run_tflite_converter

    def shifted(path, images):
        outputs = real(path, images)
        return {**outputs, "logits": outputs["logits"] + 1e-3}

    monkeypatch.setattr(consumers, "_run_tflite_converter", shifted)
    with pytest.raises(UserError, match=r"TFLite interpreter.*nothing written") as e:
        _export(rgb, tmp_path / "sm")
    assert "\n" not in str(e.value) and os.listdir(tmp_path) == []


def test_a_consumer_that_cannot_run_the_export_is_one_line(rgb, tmp_path, monkeypatch):
    def broken(path, images):
        raise RuntimeError("Could not find variable conv2/kernel\nand a long trace")

    monkeypatch.setattr(consumers, "_run_session", broken)
    with pytest.raises(UserError, match="TF1 session loader cannot run .*Could not find variable") as e:
        _export(rgb, tmp_path / "sm")
    assert "\n" not in str(e.value) and os.listdir(tmp_path) == []


def test_a_folder_holding_something_else_is_refused_and_kept(rgb, tmp_path):
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not an earlier savedmodel export"):
        _export(rgb, tmp_path / "sm")
    assert (tmp_path / "sm" / "notes.txt").read_text() == "mine" and os.listdir(tmp_path) == ["sm"]


@pytest.mark.parametrize("format", FORMATS)
def test_an_earlier_export_is_replaced(rgb, format, tmp_path):
    from kerascnn.exporting.exporter import read_class_names

    model, _, images = rgb
    out = tmp_path / FILE_NAME[format]
    _export(rgb, out, format=format)
    _export((model, list("vwxyz"), images), out, format=format)
    assert read_class_names(out) == list("vwxyz") and os.listdir(tmp_path) == [out.name]


def test_an_empty_folder_is_used_and_modes_follow_the_umask(rgb, tmp_path):
    (tmp_path / "sm").mkdir()
    out = _export(rgb, tmp_path / "sm").path
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((out / "saved_model.pb").stat().st_mode) == 0o666 & ~mask


@pytest.mark.skipif(not HAVE_ONNX, reason="export extra not installed")
def test_a_foreign_file_of_the_same_suffix_is_refused_and_kept(rgb, tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"someone else's model")
    with pytest.raises(UserError, match="not an earlier onnx export"):
        _export(rgb, tmp_path / "model.onnx", format="onnx")
    assert (tmp_path / "model.onnx").read_bytes() == b"someone else's model"


# ---------------------------------------------------------------------------- bad input, one line each
@pytest.mark.parametrize("out, kwargs, message", [
    ("file.txt", {}, "exists and is not a folder"),
    ("sub", {"format": "onnx"}, "out must end with .onnx"),
    ("folder.tflite", {"format": "litert"}, "is a folder; format 'litert' writes one .tflite file"),
    ("sm", {"format": "xyz"}, "format must be one of savedmodel, onnx, litert"),
    ("sm", {"tolerance": float("nan")}, "tolerance must be >= 0"),
])
def test_bad_arguments_are_one_line(rgb, tmp_path, out, kwargs, message):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder.tflite").mkdir()
    if kwargs.get("format") in ("onnx", "litert") and not (HAVE_ONNX and HAVE_LITERT):
        pytest.skip("export extra not installed")
    with pytest.raises(UserError, match=message) as e:
        _export(rgb, tmp_path / out, **kwargs)
    assert "\n" not in str(e.value) and sorted(os.listdir(tmp_path)) == ["file.txt", "folder.tflite"]


def test_class_names_and_images_must_fit_the_model(rgb, tmp_path):
    model, names, images = rgb
    with pytest.raises(UserError, match="class_names must be 5"):
        _export((model, names[:4], images), tmp_path / "sm")
    with pytest.raises(UserError, match=r"check_images must be \(N >= 1, 32, 32, 3\)"):
        _export((model, names, images[:, :28, :28]), tmp_path / "sm")
    assert os.listdir(tmp_path) == []


def test_dot_and_dotdot_are_resolved_first(rgb, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    assert _export(rgb, "a/../sm").path == tmp_path / "sm"
    monkeypatch.chdir(tmp_path / "a")
    (tmp_path / "a" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match=f"out {tmp_path / 'a'} exists and is not an earlier") as e:
        _export(rgb, ".")
    assert "\n" not in str(e.value) and (tmp_path / "a" / "keep.txt").exists()


@pytest.mark.parametrize("format, module", [("onnx", "onnxruntime"), ("onnx", "tf2onnx"), ("litert", "ai_edge_litert")])
def test_a_missing_extra_is_named(rgb, tmp_path, monkeypatch, format, module):
    import sys

    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(UserError, match=rf"format '{format}' needs the export extra .*kerascnn\[export\]") as e:
        _export(rgb, tmp_path / FILE_NAME[format], format=format)
    assert "\n" not in str(e.value) and os.listdir(tmp_path) == []


def test_leftovers_of_a_killed_export_are_cleaned_and_a_live_ones_kept(rgb, tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".sm.partial-{dead.pid}"
    stale.mkdir()
    (stale / "saved_model.pb").write_bytes(b"half")
    live = tmp_path / f".sm.partial-{os.getpid() + 0}-other"  # not our pattern: kept whatever its pid
    live.mkdir()
    _export(rgb, tmp_path / "sm")
    assert not stale.exists() and live.exists() and (tmp_path / "sm" / "saved_model.pb").is_file()


@pytest.mark.parametrize("name", ["cnn", "cnn_bn"])
@pytest.mark.parametrize("fmt", ["savedmodel", "onnx", "litert"])
def test_the_shipped_models_round_trip_through_every_consumer(name, fmt, tmp_path):
    """The issue's acceptance: each shipped model, each format, real test images when at hand."""
    from kerascnn import SAVED_MODELS
    from kerascnn.exporting.exporter import export
    from kerascnn.model.subject import Subject
    from kerascnn.data.tasks import Task
    from tests.support import HAVE_MNIST

    pytest.importorskip({"savedmodel": "tensorflow", "onnx": "onnxruntime", "litert": "ai_edge_litert"}[fmt])
    subject = Subject.load(SAVED_MODELS / name, Task())
    images = (Task().test()[0][:256] if HAVE_MNIST
              else np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32))
    out = tmp_path / {"savedmodel": "sm", "onnx": "m.onnx", "litert": "m.tflite"}[fmt]
    result = export(subject.logits_model, out, format=fmt, class_names=subject.class_names, check_images=images)
    assert result.checks and all(c.ok and c.argmax_agreement == 1.0 and c.max_abs_diff_logits <= 1e-4
                                 for c in result.checks)
    assert out.exists()
