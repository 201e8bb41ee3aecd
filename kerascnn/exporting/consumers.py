"""The real consumers of an exported artifact, each run on a batch of images: tf.saved_model.load, the
TFLite converter and interpreter, a TF1 session loader (the kind TF Serving uses), onnxruntime and
the LiteRT interpreter. Each returns {"logits": (N, K), "probabilities": (N, K)} as NumPy arrays.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np


def for_format(format: str):
    """(name, run) pairs; run(path, images) -> {"logits", "probabilities"}: arrays (N, K)."""
    return {"savedmodel": [("tf.saved_model.load", _run_saved_model), ("TFLite interpreter", _run_tflite_converter),
                           ("TF1 session loader", _run_session)],
            "onnx": [("onnxruntime", _run_onnx)],
            "litert": [("LiteRT interpreter", _run_litert)]}[format]


def _run_saved_model(path: Path, images: np.ndarray) -> dict:
    import tensorflow as tf

    served = tf.saved_model.load(os.fspath(path)).signatures["serving_default"](images=tf.constant(images))
    return {k: v.numpy() for k, v in served.items()}


def _run_tflite_converter(path: Path, images: np.ndarray) -> dict:
    import tensorflow as tf

    flat = tf.lite.TFLiteConverter.from_saved_model(os.fspath(path)).convert()
    with warnings.catch_warnings():  # tf.lite.Interpreter points to ai_edge_litert; it ships with TF
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_content=flat)
    return interpreter.get_signature_runner("serving_default")(images=images)


def _run_session(path: Path, images: np.ndarray) -> dict:
    import tensorflow as tf

    try:  # the loader logs that it is deprecated
        from tensorflow.python.util.deprecation import silence
    except ImportError:
        silence = contextlib.nullcontext
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session, silence():
        signatures = tf.compat.v1.saved_model.loader.load(session, ["serve"], os.fspath(path)).signature_def
        serving = signatures["serving_default"]
        outputs = {k: v.name for k, v in serving.outputs.items()}
        return session.run(outputs, {serving.inputs["images"].name: images})


def _run_onnx(path: Path, images: np.ndarray) -> dict:
    import onnxruntime

    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    return dict(zip(["logits", "probabilities"], session.run(["logits", "probabilities"], {"images": images})))


def _run_litert(path: Path, images: np.ndarray) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=os.fspath(path)).get_signature_runner("serving_default")(images=images)
