"""kerascnn.model.subject: loading a model file (one line for anything that is not one)."""
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
