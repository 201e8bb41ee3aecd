import numpy as np
import pytest

from kerascnn.model.network import build_model, has_batchnorm, layer_table
from kerascnn.model.subject import Subject


def test_architecture_has_the_assignments_layers_and_parameters():
    model = build_model()
    names = [layer.name for layer in model.layers[1:]]
    assert names == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "logits"]
    assert model.count_params() == 799_078
    assert model.output_shape == (None, 10)
    assert model.get_layer("flatten").output.shape[-1] == 1568
    assert model.get_layer("logits").activation.__name__ == "linear"  # logits, no softmax
    assert model.get_layer("conv1").activation.__name__ == "relu"


def test_batchnorm_goes_after_conv1_conv2_fc1_before_their_relu():
    model = build_model(batchnorm=True)
    names = [layer.name for layer in model.layers[1:]]
    for block in ("conv1", "conv2", "fc1"):
        i = names.index(block)
        assert names[i + 1: i + 3] == [f"{block}_bn", f"{block}_relu"]
        assert model.get_layer(block).activation.__name__ == "linear"
    assert has_batchnorm(model) and not has_batchnorm(build_model())
    # "the output of conv2" is the rectified map: after batch norm and ReLU in cnn_bn
    assert Subject(model, check=False).resolve_layer("conv2") == "conv2_relu"
    assert Subject(build_model(), check=False).resolve_layer("conv2") == "conv2"
    # 4 values (gamma, beta, moving mean, moving variance) per channel or unit
    assert model.count_params() == 799_078 + 4 * (32 + 32 + 500)


def test_layer_table_matches_the_assignments_count():
    table = layer_table(build_model())
    rows = {r.name: r for r in table.rows}
    assert table.total_params == 799_078
    assert table.params_of("conv") == 9_568 and rows["conv1"].params == 320 and rows["conv2"].params == 9_248
    assert table.params_of("dense") == 789_510 and rows["fc1"].params == 784_500 and rows["logits"].params == 5_010
    assert rows["conv1"].output_shape == (28, 28, 32) and rows["pool2"].output_shape == (7, 7, 32)
    assert rows["conv1"].units == 28 * 28 * 32
    assert rows["conv1"].macs == 28 * 28 * 32 * 9 * 1
    assert rows["conv2"].macs == 14 * 14 * 32 * 9 * 32
    assert rows["fc1"].macs == 1568 * 500
    assert rows["pool1"].macs == 0
    d = table.to_dict()
    assert d["total_params"] == 799_078
    assert [layer["name"] for layer in d["layers"]][0] == "conv1"
    assert set(d["layers"][0]) == {"name", "output_shape", "params", "units", "macs"}


@pytest.mark.parametrize("shape, classes", [((32, 32, 3), 5), ((20, 36, 1), 3)])
def test_the_same_network_is_built_for_any_image_shape_and_class_count(shape, classes):
    height, width, channels = shape
    flat = (height // 4) * (width // 4) * 32
    expected = {"conv1": 3 * 3 * channels * 32 + 32, "conv2": 3 * 3 * 32 * 32 + 32, "fc1": flat * 500 + 500,
                "logits": 500 * classes + classes}
    model = build_model(input_shape=shape, num_classes=classes)
    assert model.input_shape == (None, *shape) and model.output_shape == (None, classes)
    assert [layer.name for layer in model.layers[1:]] == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1",
                                                          "logits"]
    table = layer_table(model)
    rows = {r.name: r for r in table.rows}
    assert {name: rows[name].params for name in expected} == expected
    assert table.total_params == sum(expected.values()) == model.count_params()
    assert rows["conv1"].macs == height * width * 32 * 9 * channels
    assert rows["flatten"].output_shape == (flat,)
    out = model(np.zeros((2, *shape), np.float32))
    assert out.shape == (2, classes)


def test_mixed_precision_keeps_float32_logits():
    model = build_model(dtype_policy="mixed_bfloat16")
    out = model(np.zeros((2, 28, 28, 1), np.float32))
    assert out.dtype.name == "float32"
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("conv1").variable_dtype == "float32"


def test_batchnorm_layers_are_fused_or_synchronized_only_when_asked():
    import keras

    from kerascnn.model.batchnorm import FusedBatchNormalization

    def bn_layers(model):
        return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]

    plain, fused, synced = build_model(True), build_model(True, fused_batchnorm=True), build_model(True, synchronized=True)
    assert len(bn_layers(plain)) == 3 and not any(isinstance(l, FusedBatchNormalization) for l in bn_layers(plain))
    assert all(isinstance(l, FusedBatchNormalization) for l in bn_layers(fused))
    assert all(l.synchronized for l in bn_layers(synced)) and not any(l.synchronized for l in bn_layers(plain))
    assert fused.count_params() == plain.count_params() == synced.count_params()
