"""kerascnn.model.subject: loading a model file (one line for anything that is not one)."""
import numpy as np
import pytest

from kerascnn.errors import UserError
from kerascnn.model.subject import load_keras, resolve_model_path


def test_load_keras_refuses_missing_foreign_and_corrupt_files(tmp_path, tiny_model_path):
    with pytest.raises(UserError, match="not found"):
        load_keras(tmp_path / "missing.keras")
    (tmp_path / "text.keras").write_text("not a model")
    with pytest.raises(UserError, match="not a Keras model file"):
        load_keras(tmp_path / "text.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(tiny_model_path.read_bytes()[:20000])
    with pytest.raises(UserError) as error:
        load_keras(corrupt)
    assert "\n" not in str(error.value)
    assert load_keras(tiny_model_path.parent).count_params() == 799_078  # a folder with model.keras
    assert resolve_model_path(tiny_model_path.parent) == tiny_model_path
    with pytest.raises(UserError, match="no model.keras in folder"):
        load_keras(tmp_path)


def test_a_mixed_precision_model_is_studied_through_its_float32_twin():
    """The same weights computing in float32: its gradients keep their precision (bf16 keeps 8 bits)."""
    import keras
    import tensorflow as tf

    from kerascnn.model.subject import Subject

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(3, 3, dtype="mixed_bfloat16", name="c")(inputs)
    x = keras.layers.Flatten(dtype="mixed_bfloat16")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, dtype="float32", name="d")(x))
    subject = Subject(model, check=False)
    assert subject.twin_of == "mixed_bfloat16" and subject.model is not model
    assert all(layer.compute_dtype == "float32" for layer in subject.model.layers if layer.weights)
    for a, b in zip(subject.model.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    image = tf.constant(np.random.default_rng(0).random((1, 8, 8, 1)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(image)
        out = subject.logits_model(image)[0, 0]
    assert tape.gradient(out, image).dtype == tf.float32
    plain = Subject(keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs))), check=False)
    assert plain.twin_of is None
