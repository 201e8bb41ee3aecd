"""kerascnn.model.batchnorm: the fused batch norm computes what Keras' BatchNormalization computes."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from kerascnn.model.batchnorm import FusedBatchNormalization  # noqa: E402
from kerascnn.model.network import build_model  # noqa: E402


def _pair(shape, policy, seed=0):
    """Keras' layer and ours, built for `shape`, with the same random gamma, beta and statistics."""
    rng = np.random.default_rng(seed)
    layers = [keras.layers.BatchNormalization(dtype=policy), FusedBatchNormalization(dtype=policy)]
    values = [rng.uniform(0.5, 2.0, shape[-1:]), rng.normal(0, 1, shape[-1:]),
              rng.normal(0, 1, shape[-1:]), rng.uniform(0.5, 2.0, shape[-1:])]
    for layer in layers:
        layer.build(shape)
        layer.set_weights([v.astype("float32") for v in values])
    return layers


def _run(layer, x, dy, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.cast(layer(tf.cast(x, layer.compute_dtype), training=training), tf.float32)
    dx, dgamma, dbeta = tape.gradient(y, [x, layer.gamma, layer.beta], output_gradients=dy)
    return {"y": y.numpy(), "dx": dx.numpy(), "dgamma": dgamma.numpy(), "dbeta": dbeta.numpy(),
            "moving_mean": layer.moving_mean.numpy(), "moving_variance": layer.moving_variance.numpy()}


@pytest.mark.parametrize("shape", [(6, 5, 7, 4), (2, 3, 3, 8), (5, 12)])
@pytest.mark.parametrize("training", [True, False])
def test_fused_layer_matches_keras_forward_backward_and_moving_statistics(shape, training):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(1.5, 2.0, shape).astype("float32"))
    dy = tf.constant(rng.normal(0, 1, shape).astype("float32"))
    theirs, ours = (_run(layer, x, dy, training) for layer in _pair(shape, "float32"))
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_fused_layer_in_training_is_the_closed_form_with_the_biased_variance():
    """Independent of Keras: y = gamma (x - mean) / sqrt(var + eps) + beta over N, H, W; the moving
    statistics move by (1 - momentum) towards the batch mean and the *biased* batch variance."""
    shape = (4, 3, 5, 2)
    layer = _pair(shape, "float32", seed=3)[1]
    gamma, beta, mean0, var0 = layer.get_weights()
    x = np.random.default_rng(2).normal(-1.0, 3.0, shape).astype("float32")
    y = layer(tf.constant(x), training=True).numpy()
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # numpy's var is the biased one
    np.testing.assert_allclose(y, gamma * (x - mean) / np.sqrt(var + layer.epsilon) + beta, rtol=1e-5, atol=1e-5)
    m = layer.momentum
    np.testing.assert_allclose(layer.moving_mean.numpy(), m * mean0 + (1 - m) * mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), m * var0 + (1 - m) * var, rtol=1e-6, atol=1e-6)


def test_fused_layer_in_mixed_bfloat16_matches_keras_within_bfloat16_rounding():
    shape = (8, 6, 6, 16)
    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(1.0, 2.0, shape).astype("float32"))
    dy = tf.constant(rng.normal(0, 1, shape).astype("float32"))
    theirs, ours = (_run(layer, x, dy, True) for layer in _pair(shape, "mixed_bfloat16"))
    assert ours["y"].dtype == np.float32
    for name in theirs:  # bfloat16 keeps 8 bits: one unit in the last place is 2**-8 of the value
        scale = np.abs(theirs[name]).max()
        assert np.abs(ours[name] - theirs[name]).max() <= 2 ** -7 * scale, name


def test_training_model_with_fused_layers_saves_and_reloads_and_its_weights_fit_the_plain_model(tmp_path):
    fast = build_model(True, None, (12, 12, 3), 4, fused_batchnorm=True)
    plain = build_model(True, None, (12, 12, 3), 4)
    kinds = {type(layer).__name__ for layer in fast.layers}
    assert "FusedBatchNormalization" in kinds and "FusedBatchNormalization" not in {type(l).__name__ for l in plain.layers}
    x = np.random.default_rng(5).uniform(0, 1, (16, 12, 12, 3)).astype("float32")
    y = np.arange(16) % 4
    fast.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    fast.fit(x, y, epochs=2, batch_size=8, verbose=0)  # moving statistics away from their start
    fast.save(tmp_path / "checkpoint.keras")
    again = keras.models.load_model(tmp_path / "checkpoint.keras")  # through Keras' registration
    plain.set_weights(fast.get_weights())
    expected = fast.predict(x, verbose=0)
    np.testing.assert_allclose(again.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(plain.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)


def test_training_model_pools_before_the_relu_with_the_same_outputs_and_gradients():
    fast = build_model(True, None, (12, 12, 3), 4, fused_batchnorm=True)
    plain = build_model(True, None, (12, 12, 3), 4)
    names = [layer.name for layer in fast.layers]
    assert names.index("pool1") < names.index("conv1_relu") and names.index("pool2") < names.index("conv2_relu")
    plain_names = [layer.name for layer in plain.layers]
    assert plain_names.index("conv1_relu") < plain_names.index("pool1")
    plain.set_weights(fast.get_weights())
    # inputs centred on 0, so that many of the batch-normalised values are negative: the ReLU matters
    x = tf.constant(np.random.default_rng(2).normal(size=(8, 12, 12, 3)).astype("float32"))
    y = np.arange(8) % 4
    results = []
    for model in (fast, plain):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
        results.append((logits.numpy(), tape.gradient(loss, model.trainable_variables)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    for variable, ours, theirs in zip(fast.trainable_variables, results[0][1], results[1][1]):
        # the conv and fc1 biases' gradients are zero up to rounding (batch norm removes the mean)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-3, atol=1e-5, err_msg=variable.path)
        if not variable.path.endswith("bias"):
            assert np.abs(theirs.numpy()).max() > 1e-3, variable.path
