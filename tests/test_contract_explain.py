"""The experiment contract (tests/test_contract.py) for the explanation experiments and the filter
maximisation, on the same two models: `digits` (functional, (28, 28, 1) -> 10 logits) and `pets`
(Sequential, (32, 32, 3) -> 5 through a softmax). Numbers are recomputed independently: gradients
and activations from sub-models built here, logits of `pets` from its head's weights, probabilities
from the Keras model itself."""
import numpy as np
import pytest

from kerascnn.attributions.gradients import METHODS, Settings
from kerascnn.experiments import get
from kerascnn.data.tasks import Pick
from tests.test_contract import (case, check_protocol, digits, digits_data, pets, pets_data, scaled,  # noqa: F401
                                 signed)  # (fixtures)


def logits(case, images) -> np.ndarray:
    """The model's logits computed here: the model itself (digits), or its head's weights on the
    flattened features (pets, whose model ends in a softmax)."""
    import keras

    images = case.to_model(np.asarray(images, np.float32))
    if not case.ends_in_softmax:
        return np.asarray(case.model(images, training=False), np.float64)
    head = case.model.get_layer("head")
    features = keras.Model(case.model.inputs[0], head.input)(images, training=False)
    kernel, bias = (np.asarray(w, np.float64) for w in head.get_weights())
    return np.asarray(features, np.float64) @ kernel + bias


def input_gradient(case, image, k) -> np.ndarray:
    """d logit_k / d image (H, W, C) by a tape on a model built here (Dense head without softmax)."""
    import keras
    import tensorflow as tf

    model = case.model
    if case.ends_in_softmax:
        head = model.get_layer("head")
        linear = keras.layers.Dense(head.units)
        out = linear(model.get_layer("flat").output)
        linear.set_weights(head.get_weights())
        model = keras.Model(case.model.inputs[0], out)
    x = tf.constant(image[None], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(case.to_model(x), training=False)[0, k]
    return tape.gradient(y, x).numpy()[0]


def test_explain(case):
    experiment = get("explain")
    i = 2
    result = experiment.run(case.subject, experiment.Options(Pick(index=i)))
    image = case.x_test[i]
    p = case.probabilities(image[None])[0]
    k = int(p.argmax())
    assert result.target == result.predicted == k and list(result.maps) == list(METHODS)
    np.testing.assert_allclose(result.probabilities, p, atol=1e-5)
    for m, v in result.maps.items():
        assert v.shape == image.shape[:2] and np.isfinite(v).all(), m
    np.testing.assert_allclose(result.maps["saliency"], input_gradient(case, image, k).sum(-1), rtol=1e-4, atol=1e-5)
    z = logits(case, np.stack([image, np.zeros_like(image)]))
    c = result.completeness
    assert c["difference"] == pytest.approx(z[0, k] - z[1, k], rel=1e-4, abs=1e-4)
    assert c["sum"] == pytest.approx(float(result.maps["integrated-gradients"].sum(dtype=np.float64)), rel=1e-5)
    assert c["relative_error"] < 0.05
    assert result.layer == case.subject.last_conv_layer() and result.maps["gradcam"].min() >= 0
    names = case.class_names
    d = check_protocol(experiment, result, case, names_in_titles=[f"predicted {names[k]}", f"true class {names[case.y_test[i]]}",
                                                                  f"logit of {names[k]}"])
    assert d["target_name"] == names[k] and d["methods"] == list(METHODS)
    assert set(experiment.arrays(result)) == {"maps.npy", "image.npy"}
    other = (k + 1) % len(names)
    chosen = experiment.run(case.subject, experiment.Options(Pick(index=i), target=names[other],
                                                             settings=Settings(methods=("saliency",))))
    assert chosen.target == other
    np.testing.assert_allclose(chosen.maps["saliency"], input_gradient(case, image, other).sum(-1), rtol=1e-4, atol=1e-5)


def test_faithfulness(case):
    experiment = get("faithfulness")
    result = experiment.run(case.subject, experiment.Options(count=5, steps=4, randomise=2))
    images = case.x_test[:5]
    p = case.probabilities(images)
    targets = p.argmax(1)
    rows = np.arange(5)
    assert result.targets.tolist() == targets.tolist() and result.orders == [*METHODS, "random", "brightness"]
    black = case.probabilities(np.zeros_like(images))[rows, targets]
    for order in result.orders:
        for kind in ("deletion", "insertion"):
            assert getattr(result, kind)[order].shape == (5, 5)
        np.testing.assert_allclose(result.deletion[order][:, 0], p[rows, targets], atol=1e-5)
        np.testing.assert_allclose(result.insertion[order][:, -1], p[rows, targets], atol=1e-5)
        np.testing.assert_allclose(result.deletion[order][:, -1], black, atol=1e-5)
        np.testing.assert_allclose(result.insertion[order][:, 0], black, atol=1e-5)
    weighted = [layer.name for layer in reversed(case.subject.logits_model.layers) if layer.weights]
    assert result.stages == ["trained", *weighted]
    for m in METHODS:
        assert result.correlation[m].shape == (len(weighted) + 1, 2)
        np.testing.assert_allclose(result.correlation[m][0], 1.0)
    d = check_protocol(experiment, result, case)
    assert d["randomisation"]["stages"] == result.stages and set(d["scores"]) == {*METHODS, "random", "brightness"}


def test_explanation_metrics(case):
    """Quantus' sparseness and complexity of each image's saliency map, recomputed here from the
    gradient of a model built here (Gini by the mean absolute difference, entropy of the shares), and
    random-logit's off-class never the explained one."""
    experiment = get("explanation_metrics")
    options = experiment.Options(count=3, metrics=("sparseness", "complexity", "random-logit"),
                                 settings=Settings(methods=("saliency",)))
    result = experiment.run(case.subject, options)
    images = case.x_test[:3]
    targets = case.probabilities(images).argmax(1)
    assert result.targets.tolist() == targets.tolist() and result.methods == ["saliency"]
    for i, (image, k) in enumerate(zip(images, targets)):
        x = np.abs(input_gradient(case, image, int(k)).sum(-1)).ravel()
        x = x / x.max() + 1e-7
        gini = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
        assert result.values["sparseness"]["saliency"][i] == pytest.approx(gini, rel=1e-3, abs=1e-4)
        share = np.abs(x - 1e-7) / np.abs(x - 1e-7).sum()
        entropy = -(share * np.log(share + 1e-12)).sum()
        assert result.values["complexity"]["saliency"][i] == pytest.approx(entropy, rel=1e-3, abs=1e-4)
    assert np.all(np.isfinite(result.values["random-logit"]["saliency"]))
    d = check_protocol(experiment, result, case)
    assert list(d["metrics"]) == ["sparseness", "complexity", "random-logit"]
    assert d["metrics"]["sparseness"]["better"] == "higher" and "faithfulness" not in d


def test_explain_attack(case):
    from kerascnn.experiments.noise import Options as NoiseOptions

    experiment = get("explain_attack")
    target = 4
    i = case.first_of(0)
    options = experiment.Options(Pick(index=i), target=case.class_names[target],
                                 noise=NoiseOptions(steps=60, lr=0.02, confidence=0.8),
                                 settings=Settings(methods=("saliency", "gradcam")))
    result = experiment.run(case.subject, options)
    attacked = result.adversarial.image
    np.testing.assert_allclose(case.x_test[i] + result.noise, attacked, atol=1e-6)
    assert attacked.min() >= 0 and attacked.max() <= 1
    p = case.probabilities(np.stack([case.x_test[i], attacked]))
    assert result.clean.predicted == p[0].argmax() and result.adversarial.predicted == p[1].argmax()
    assert result.success == bool(p[1].argmax() == target and p[1, target] >= 0.8)
    np.testing.assert_allclose(result.adversarial.maps["saliency"],
                               input_gradient(case, attacked, int(p[1].argmax())).sum(-1), rtol=1e-4, atol=1e-5)
    names = case.class_names
    d = check_protocol(experiment, result, case, names_in_titles=[f"towards {names[target]}"])
    assert d["target_name"] == names[target] and set(d["rank_correlation_abs"]) == {"saliency", "gradcam"}


def test_maximize(case):
    import keras

    experiment = get("maximize")
    first = case.subject.conv_layers()[0]
    result = experiment.run(case.subject, experiment.Options(steps=4))
    kernel = case.model.get_layer(first).kernel.numpy()
    assert result.weights.layer == first and result.images.shape == (kernel.shape[-1],) + case.x_test.shape[1:]
    maps = keras.Model(case.model.inputs[0], case.model.get_layer(first).output)(case.to_model(result.images),
                                                                               training=False).numpy()
    inner = maps[:, 2:-2, 2:-2] if min(maps.shape[1:3]) > 4 else maps
    own = inner[np.arange(len(maps)), :, :, np.arange(len(maps))].mean(axis=(1, 2))
    np.testing.assert_allclose(result.activation, own, rtol=1e-4, atol=1e-5)
    assert (result.activation >= result.start - 1e-6).all() and np.isfinite(result.images).all()
    d = check_protocol(experiment, result, case)
    assert d["layer"] == first and len(d["activation"]) == kernel.shape[-1]


def test_concepts(case):
    """TCAV on every model of the contract: the CAVs at the last convolution, a score per concept, class
    and run in [0, 1], significance at alpha / (concepts x classes), class names in the JSON."""
    experiment = get("concepts")
    shape = case.x_test.shape[1:]
    bright = np.clip(case.x_test[:12] + 0.5, 0, 1)
    concepts = (("bright", bright), ("first", case.x_test[:10]))
    result = experiment.run(case.subject, experiment.Options(concepts=concepts, targets=(0, 1), random_runs=2,
                                                             count=4, random_images=10))
    assert bright.shape[1:] == shape
    assert result.layer == case.subject.resolve_layer(case.subject.conv_layers()[-1])
    assert result.scores.shape == (2, 2, 2) and result.random_scores.shape == (2, 2)
    assert ((result.scores >= 0) & (result.scores <= 1)).all()
    assert np.array_equal(result.significant, result.p_values < 0.05 / 4)
    d = check_protocol(experiment, result, case)
    assert d["targets"] == list(case.class_names[:2]) and set(d["concepts"]) == {"bright", "first"}
