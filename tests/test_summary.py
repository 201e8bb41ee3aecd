"""`kerascnn summary`: the network counted for the assignment, for any task's shape, or any model."""
import json

import numpy as np
import pytest

from kerascnn.data import folders, sources
from tests.support import cli


@pytest.fixture(autouse=True)
def fresh_cache():
    sources.load.cache_clear()
    yield
    sources.load.cache_clear()


def expected_params(height, width, channels, classes):
    """The assignment's network counted by hand: conv 32 3x3 (same), pool, conv 32 3x3, pool, 500, K."""
    flat = (height // 4) * (width // 4) * 32
    return [3 * 3 * channels * 32 + 32, 3 * 3 * 32 * 32 + 32, flat * 500 + 500, 500 * classes + classes]


def test_summary_json_agrees_with_the_assignment():
    result = cli("summary", "--json")
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    assert table["total_params"] == 799_078
    assert table["conv_params"] == 9_568 and table["dense_params"] == 789_510
    assert [layer["params"] for layer in table["layers"] if layer["params"]] == [320, 9_248, 784_500, 5_010]
    assert [layer["params"] for layer in table["layers"] if layer["params"]] == expected_params(28, 28, 1, 10)
    text = cli("summary")
    assert "799,078" in text.output and "9,568 (320 + 9,248)" in text.output
    assert "input (28, 28, 1) -> 10 outputs" in text.output


def test_summary_of_the_assignment_needs_no_data(monkeypatch, tmp_path):
    # counting the network reads no image: it works offline with no MNIST anywhere
    def no_data(*args, **kwargs):
        raise AssertionError("summary read images")

    monkeypatch.setattr(sources, "load", no_data)
    result = cli("summary", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_params"] == 799_078


def test_summary_with_batchnorm_counts_its_extra_parameters():
    result = cli("summary", "--batchnorm", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_params"] == 799_078 + 4 * (32 + 32 + 500)
    assert "other parameters 2,256 (batch norm" in cli("summary", "--batchnorm").output


@pytest.mark.parametrize("dataset, shape, classes", [("cifar10", (32, 32, 3), 10),
                                                     ("fashion_mnist", (28, 28, 1), 10)])
def test_summary_counts_the_network_for_another_tfds_dataset(monkeypatch, dataset, shape, classes):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(sources, "_can_reach", lambda *a, **k: True)  # the mock's prepare is a no-op
    with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
        result = cli("summary", "--dataset", dataset, "--json")
        text = cli("summary", "--dataset", dataset)
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    params = expected_params(*shape, classes)
    assert [layer["params"] for layer in table["layers"] if layer["params"]] == params
    assert table["total_params"] == sum(params)
    assert table["layers"][0]["output_shape"] == [shape[0], shape[1], 32]
    assert table["layers"][0]["macs"] == shape[0] * shape[1] * 32 * 9 * shape[2]
    assert f"input {shape} -> {classes} outputs" in text.output and f"{sum(params):,}" in text.output


def test_summary_of_an_image_folder_and_of_any_model(tmp_path):
    import keras

    images = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    for split in ("train", "test"):
        folders.write_image_folder(tmp_path / "pets", images, np.arange(10) % 5, ["ant", "bee", "cat", "dog", "eel"],
                                   split)
    result = cli("summary", "--data-dir", tmp_path / "pets", "--json")
    assert result.exit_code == 0, result.output
    params = expected_params(32, 32, 3, 5)
    assert json.loads(result.stdout)["total_params"] == sum(params)

    model = keras.Sequential([keras.Input((12, 16, 2)), keras.layers.Conv2D(3, 5, name="edges"),
                              keras.layers.Flatten(name="flat"), keras.layers.Dense(4, activation="softmax",
                                                                                     name="probs")])
    model.save(tmp_path / "mine.keras")
    result = cli("summary", "--model", tmp_path / "mine.keras", "--json")
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    conv = 5 * 5 * 2 * 3 + 3
    dense = 8 * 12 * 3 * 4 + 4
    assert [(layer["name"], layer["params"]) for layer in table["layers"]] == [("edges", conv), ("flat", 0),
                                                                               ("probs", dense)]
    assert table["conv_params"] == conv and table["dense_params"] == dense
    assert "input (12, 16, 2) -> 4 outputs" in cli("summary", "--model", tmp_path / "mine.keras").output
