"""Universal noise fitted on training images (attacks.universal_perturbation), the `attack universal`
command beside the one-image noise at the same budget, and the transfer matrix (`kerascnn transfer`)."""
import json

import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.attacks.universal_perturbation import fit_universal
from tests.support import cli, load_model, written
from tests.test_robustness import images_of, tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=4)


@pytest.mark.parametrize("norm, eps", [("linf", 0.2), ("l2", 3.0)])
def test_the_noise_stays_in_its_ball_and_pushes_towards_the_target(model, norm, eps):
    x = images_of((28, 28, 1), n=60, seed=1)
    before = np.mean(model(x).numpy().argmax(axis=1) == 3)
    fit = fit_universal(model, x, 3, eps=eps, norm=norm, epochs=5, batch_size=20)
    size = np.abs(fit.noise).max() if norm == "linf" else np.sqrt(np.sum(fit.noise.astype(np.float64) ** 2))
    assert size <= eps * (1 + 1e-5)
    after = np.mean(model(np.clip(x + fit.noise, 0, 1)).numpy().argmax(axis=1) == 3)
    assert after > before and fit.fit_fraction[-1] == pytest.approx(after)


def pixel_model(pixel: int, outward: int, sign: float, shape=(6, 6, 1)):
    """Two classes; class 1's logit is 10 sign (x[pixel] - x[outward]) + const: to reach class 1,
    `pixel` must move by sign (brighter for +1, darker for -1) and `outward` by -sign."""
    import keras

    inputs = keras.Input(shape)
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    kernel = np.zeros((int(np.prod(shape)), 2), np.float32)
    kernel[pixel, 1] = 10.0 * sign
    kernel[outward, 1] = -10.0 * sign
    dense.set_weights([kernel, np.array([0.0, -sign * 10.0 * (0.5 if sign > 0 else -0.5)], np.float32)])
    return model


@pytest.mark.parametrize("value, sign", [(0.0, 1.0), (1.0, -1.0)])
def test_a_black_pixel_brightens_and_a_white_one_darkens(value, sign):
    """The step points inward: the fit must move a pixel that sits at 0 (or 1) in every image, as the
    gradient asks; the pixels the gradient pushes outward stay where they are."""
    images = np.random.default_rng(0).uniform(0.2, 0.8, (40, 6, 6, 1)).astype(np.float32)
    images[:, 0, 0, 0] = value        # the pixel the model reads, at the bound in every image
    images[:, 1, 1, 0] = value        # another at the same bound, which the gradient pushes outward
    model = pixel_model(0, 7, sign)
    fit = fit_universal(model, images, 1, eps=0.3, epochs=10, batch_size=10)
    assert fit.noise[0, 0, 0] == pytest.approx(0.3 * sign, rel=1e-5)  # moved inward, to the ball's edge
    assert fit.noise[1, 1, 0] == 0.0 and fit.noise[2, 2, 0] == 0.0  # outward, and no gradient at all
    np.testing.assert_allclose(np.clip(images + fit.noise, 0, 1)[:, 0, 0, 0], value + 0.3 * sign, rtol=1e-6)


def test_same_seed_same_noise(model):
    x = images_of((28, 28, 1), n=30)
    a, b = (fit_universal(model, x, 1, eps=0.1, epochs=2, batch_size=10, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.noise, b.noise)


@pytest.mark.parametrize("kwargs, param", [({"eps": -1}, "eps"), ({"target": 10}, "target"),
                                           ({"norm": "l0"}, "norm"), ({"epochs": 0}, "epochs")])
def test_bad_values_name_their_parameter(model, kwargs, param):
    args = {"target": 1, "eps": 0.1} | kwargs
    with pytest.raises(BadValue) as error:
        fit_universal(model, images_of((28, 28, 1), n=4), args.pop("target"), **args)
    assert error.value.param == param


# ---------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def model_paths(tmp_path_factory):
    from kerascnn.outputs import store

    folder = tmp_path_factory.mktemp("universal")
    paths = []
    for seed in (4, 5):
        store.save_model(tiny_model(seed=seed), folder / f"m{seed}.keras")
        paths.append(folder / f"m{seed}.keras")
    return paths


def test_universal_command_compares_at_the_same_budget(model_paths, idx_dir, tmp_path):
    out = tmp_path / "u"
    result = cli("attack", "universal", "--model", model_paths[0], "--data-dir", idx_dir, "--target", 3,
                 "--fit", 100, "--count", 50, "--epochs", 2, "--noise-steps", 300, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"universal.png", "universal_noise.npy", "one_image_noise.npy", "result.json"}
    data = json.loads((out / "result.json").read_text())
    one, fitted = np.load(out / "one_image_noise.npy"), np.load(out / "universal_noise.npy")
    assert data["norm"] == "linf" and data["eps"] == pytest.approx(float(np.abs(one).max()), rel=1e-6)
    assert float(np.abs(fitted).max()) <= data["eps"] * (1 + 1e-5)
    assert data["universal"]["count"] == data["one_image"]["count"] == 50 and data["one_image"]["steps"] == 300
    # re-predicted by Keras itself on the held-out images the result names
    from kerascnn.data.tasks import Task

    images, labels = Task("mnist", str(idx_dir)).test()
    held = np.array(data["universal"]["indices"])
    assert data["one_image"]["source"].startswith("test image ") and int(data["one_image"]["source"].split()[2]) not in held
    predicted = load_model(model_paths[0])(np.clip(images[held] + fitted, 0, 1)).numpy().argmax(axis=1)
    assert data["universal"]["fraction_target"] == pytest.approx(float(np.mean(predicted == 3)))


def test_the_one_image_noise_takes_its_own_step_budget(model_paths, idx_dir, monkeypatch):
    """noise_steps (the report's budget on a model of real size) reaches the one-image noise, is
    recorded, and defaults to the noise command's steps; 0 is refused naming it."""
    from kerascnn import attacks
    from kerascnn.data.tasks import Task
    from kerascnn.experiments import noise as noise_exp, universal
    from kerascnn.model.subject import Subject

    subject = Subject.load(model_paths[0], Task("mnist", str(idx_dir)))
    seen, real = [], attacks.noise
    monkeypatch.setattr(attacks, "noise", lambda *a, **k: (seen.append(k["steps"]), real(*a, **k))[1])
    result = universal.run(subject, universal.Options(target=3, fit=20, count=10, epochs=1, noise_steps=7))
    assert seen == [7] and result.to_dict()["one_image"]["steps"] == 7
    assert universal.Options().noise_steps == noise_exp.Options().steps == 500
    with pytest.raises(BadValue) as error:
        universal.run(subject, universal.Options(noise_steps=0))
    assert error.value.param == "noise_steps"


@pytest.mark.parametrize("args, option", [(["--eps", "-0.1"], "--eps"), (["--norm", "l1"], "--norm"),
                                          (["--fit", "0"], "--fit"), (["--target", "11"], "--target"),
                                          (["--noise-steps", "0"], "--noise-steps")])
def test_universal_bad_values(args, option, model_paths, idx_dir, tmp_path):
    result = cli("attack", "universal", *args, "--model", model_paths[0], "--data-dir", idx_dir, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and option in result.output


def test_transfer_matrix(model_paths, idx_dir, tmp_path):
    """The saved examples and noises, re-predicted by Keras itself over the images each source got
    right, give the matrix's numbers; images the source got wrong are left out."""
    out = tmp_path / "t"
    result = cli("transfer", "--data-dir", idx_dir, "--source-model", model_paths[0], "--source-model", model_paths[1],
                 "--count", 30, "--fit", 40, "--steps", 5, "--eps", 0.1, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"transfer_pgd.png", "transfer_universal.png", "result.json", "labels.npy",
                            "pgd_examples_0.npy", "pgd_examples_1.npy", "universal_noise_0.npy",
                            "universal_noise_1.npy", "source_right_0.npy", "source_right_1.npy"}
    data = json.loads((out / "result.json").read_text())
    names = ["m4", "m5"]
    assert data["sources"] == data["evals"] == names
    from kerascnn.data.tasks import Task

    images, labels = Task("mnist", str(idx_dir)).test()
    images, labels = images[:30], labels[:30]
    np.testing.assert_array_equal(np.load(out / "labels.npy"), labels)
    models = [load_model(p) for p in model_paths]
    for i, s in enumerate(names):
        right = np.load(out / f"source_right_{i}.npy")
        np.testing.assert_array_equal(right, models[i](images).numpy().argmax(1) == labels)
        assert data["measured_on"][s] == int(right.sum()) and 0 < right.sum() < 30  # some left out
        examples, noise = np.load(out / f"pgd_examples_{i}.npy"), np.load(out / f"universal_noise_{i}.npy")
        assert np.abs(examples - images).max() <= 0.1 + 1e-6 and np.abs(noise).max() <= 0.1 + 1e-6
        for j, e in enumerate(names):
            predicted = models[j](examples[right]).numpy().argmax(1)
            assert data["pgd_accuracy"][s][e] == pytest.approx(np.mean(predicted == labels[right]))
            noisy = models[j](np.clip(images[right] + noise, 0, 1)).numpy().argmax(1)
            clean = models[j](images[right]).numpy().argmax(1)
            eligible = clean != 4
            turned = np.mean(noisy[eligible] == 4) if eligible.any() else 0.0
            assert data["universal_turned"][s][e] == pytest.approx(turned)
