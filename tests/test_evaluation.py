"""`kerascnn evaluate` and kerascnn.experiments.evaluation, checked against numbers computed here."""
import json

import numpy as np
import pytest

from kerascnn.data import sources
from kerascnn.model.evaluate import confusion_matrix, evaluate
from tests.support import cli, hand_softmax, load_model, needs_mnist, needs_pretrained, written


def idx_test_split(idx_dir):
    images = sources.read_idx(idx_dir / "t10k-images-idx3-ubyte").astype(np.float32)[..., None] / 255
    return images, sources.read_idx(idx_dir / "t10k-labels-idx1-ubyte").astype(np.int64)


def test_evaluate_json_and_figures(tmp_path, idx_dir, tiny_model_path):
    out = tmp_path / "eval"
    result = cli("evaluate", "--model", tiny_model_path, "--data-dir", idx_dir, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["count"] == 200 and 0 <= report["accuracy"] <= 1
    assert sum(map(sum, report["confusion"])) == 200
    assert set(report["per_class_accuracy"]) == {str(c) for c in range(10)}
    assert report["model"] == str(tiny_model_path) and report["dataset"] == idx_dir.name
    # the numbers, recomputed here from the IDX files and the model loaded by Keras itself
    images, labels = idx_test_split(idx_dir)
    logits = np.asarray(load_model(tiny_model_path)(images), np.float64)
    assert report["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert report["loss"] == pytest.approx(-np.log(hand_softmax(logits)[np.arange(200), labels]).mean(), rel=1e-4)
    assert written(out) == {"confusion.png", "predictions.png", "result.json"}
    for name in ("confusion.png", "predictions.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "result.json").read_text()) == report
    assert f"wrote {out}/" in result.stderr  # with --json, messages go to stderr


def test_evaluate_prints_its_table(tmp_path, idx_dir, tiny_model_path):
    result = cli("evaluate", "--model", tiny_model_path, "--data-dir", idx_dir, "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval" / "result.json").read_text())
    assert f"test accuracy {report['accuracy']:.2%}" in result.stdout
    assert "most often mistaken for" in result.stdout and "Test accuracy" in result.stdout


def test_confusion_and_per_class_accuracy_by_hand():
    assert confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3).tolist() == [[1, 1, 0], [0, 1, 0],
                                                                                           [0, 1, 0]]
    import keras

    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(3, use_bias=False)])
    model.layers[-1].set_weights([np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], np.float32)])
    images = np.zeros((4, 2, 2, 1), np.float32)
    images[0, 0, 0], images[1, 0, 1], images[2, 1, 0], images[3, 0, 0] = 1, 1, 1, 1  # predicted 0, 1, 2, 0
    e = evaluate(model, images, np.array([0, 1, 1, 2]), class_names=("a", "b", "c"))
    assert e.accuracy == 0.5 and e.predictions.tolist() == [0, 1, 2, 0]
    np.testing.assert_allclose(e.per_class_accuracy, [1.0, 0.5, 0.0])
    assert e.confusion.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    assert e.to_dict()["per_class_accuracy"] == {"a": 1.0, "b": 0.5, "c": 0.0}


@needs_mnist
@needs_pretrained
def test_pretrained_model_reaches_99_percent_on_the_real_test_split(tmp_path):
    result = cli("evaluate", "--json", "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["count"] == 10_000
    assert report["accuracy"] >= 0.99
