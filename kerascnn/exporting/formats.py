"""How kerascnn.exporting.exporter writes each format: the float32 twin of a mixed-precision model, the model
behind the serving contract, and the writer of a SavedModel folder, an .onnx file or a .tflite file
(with the class names inside). export() checks what these write before it is put in place.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np


METADATA_KEY = "kerascnn"  # the JSON of {"class_names", ...} in a .onnx or .tflite file's metadata


def serving_model(model, shape):
    """`model` behind the contract: input `images`, float32 `logits` and `probabilities`."""
    import keras

    images = keras.Input(shape, dtype="float32", name="images")
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(model(images, training=False))
    probabilities = keras.layers.Softmax(dtype="float32", name="probabilities")(logits)
    serving = keras.Model(images, {"logits": logits, "probabilities": probabilities}, name="serving")
    serving(np.zeros((1, *(d or 1 for d in shape)), np.float32))  # Keras' exporters want a called model
    return serving


def write(format: str, serving, tmp: Path, info: dict) -> None:
    import tensorflow as tf

    spec = [tf.TensorSpec((None, *info["input_shape"]), tf.float32, name="images")]
    if format == "savedmodel":
        import keras

        archive = keras.export.ExportArchive()
        archive.track(serving)
        archive.add_endpoint("serving_default", lambda images: serving(images, training=False), input_signature=spec)
        # One serving signature only: a second (the class names) left TFLite's converter with an
        # interpreter of no inputs. The names travel as a variable of the loaded object (and in assets.extra).
        archive.add_variable_collection("class_names", [tf.Variable(info["class_names"], trainable=False,
                                                                    name="class_names")])
        archive.write_out(os.fspath(tmp), verbose=False)
        (tmp / "assets.extra").mkdir(exist_ok=True)
        (tmp / "assets.extra" / "class_names.txt").write_text("".join(n + "\n" for n in info["class_names"]))
    elif format == "onnx":
        import onnx

        with warnings.catch_warnings():  # Keras' numpy-2 patch of tf2onnx touches np.object
            warnings.simplefilter("ignore", FutureWarning)
            serving.export(os.fspath(tmp), format="onnx", input_signature=spec, verbose=False)
        proto = onnx.load(os.fspath(tmp))
        onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(info)})
        onnx.save(proto, os.fspath(tmp))
    else:
        from tensorflow.lite.python import schema_py_generated as schema
        from tensorflow.lite.tools import flatbuffer_utils

        serving.export(os.fspath(tmp), format="litert", input_signature=spec, verbose=False)
        flat = flatbuffer_utils.read_model_from_bytearray(bytearray(tmp.read_bytes()))
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(json.dumps(info).encode(), np.uint8)
        flat.buffers.append(buffer)
        flat.metadata = [*(flat.metadata or []), schema.MetadataT(name=METADATA_KEY, buffer=len(flat.buffers) - 1)]
        tmp.write_bytes(flatbuffer_utils.convert_object_to_bytearray(flat))
