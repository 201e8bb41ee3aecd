import numpy as np
import pytest
import tensorflow as tf

from kerascnn import UserError, store


def test_atomic_write_leaves_nothing_when_it_fails(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(TypeError):
        store.write_json(target, {"x": object()})
    assert list(tmp_path.iterdir()) == []
    store.write_json(target, {"x": np.float32(1.5), "a": np.arange(2)})
    assert target.read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_unwritable_folder_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create folder"):
        store.ensure_dir(blocker / "sub")


def test_load_model_refuses_missing_foreign_and_corrupt_files(tmp_path, tiny_model_path):
    with pytest.raises(UserError, match="not found"):
        store.load_model(tmp_path / "missing.keras")
    (tmp_path / "text.keras").write_text("not a model")
    with pytest.raises(UserError, match="not a Keras model file"):
        store.load_model(tmp_path / "text.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(tiny_model_path.read_bytes()[:20000])
    with pytest.raises(UserError):
        store.load_model(corrupt)
    assert store.load_model(tiny_model_path.parent).count_params() == 799_078  # a folder with model.keras


def test_export_savedmodel_serves_logits_and_probabilities(tmp_path, tiny_model_path):
    model = store.load_model(tiny_model_path)
    images = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
    result = store.export_savedmodel(model, tmp_path / "exported", images)
    assert result.ok and result.max_abs_diff_logits <= 1e-5 and result.checked_images == 8
    loaded = tf.saved_model.load(str(tmp_path / "exported"))
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]["images"]
    assert spec.shape.as_list() == [None, 28, 28, 1] and spec.dtype == tf.float32
    out = serve(images=tf.constant(images))
    np.testing.assert_allclose(out["logits"].numpy(), model(images).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]  # no temporary folder left
