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
                 "--fit", 100, "--count", 50, "--epochs", 2, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"universal.png", "universal_noise.npy", "one_image_noise.npy", "result.json"}
    data = json.loads((out / "result.json").read_text())
    one, fitted = np.load(out / "one_image_noise.npy"), np.load(out / "universal_noise.npy")
    assert data["norm"] == "linf" and data["eps"] == pytest.approx(float(np.abs(one).max()), rel=1e-6)
    assert float(np.abs(fitted).max()) <= data["eps"] * (1 + 1e-5)
    assert data["universal"]["count"] == data["one_image"]["count"] == 50
    # re-predicted by Keras itself on the held-out images the result names
    from kerascnn.data.tasks import Task

    images, labels = Task("mnist", str(idx_dir)).test()
    held = np.array(data["universal"]["indices"])
    assert data["one_image"]["source"].startswith("test image ") and int(data["one_image"]["source"].split()[2]) not in held
    predicted = load_model(model_paths[0])(np.clip(images[held] + fitted, 0, 1)).numpy().argmax(axis=1)
    assert data["universal"]["fraction_target"] == pytest.approx(float(np.mean(predicted == 3)))


@pytest.mark.parametrize("args, option", [(["--eps", "-0.1"], "--eps"), (["--norm", "l1"], "--norm"),
                                          (["--fit", "0"], "--fit"), (["--target", "11"], "--target")])
def test_universal_bad_values(args, option, model_paths, idx_dir, tmp_path):
    result = cli("attack", "universal", *args, "--model", model_paths[0], "--data-dir", idx_dir, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and option in result.output


def test_transfer_matrix(model_paths, idx_dir, tmp_path):
    out = tmp_path / "t"
    result = cli("transfer", "--data-dir", idx_dir, "--source-model", model_paths[0], "--source-model", model_paths[1],
                 "--count", 30, "--fit", 40, "--steps", 5, "--eps", 0.1, "--out", out)
    assert result.exit_code == 0, result.output
    assert written(out) == {"transfer_pgd.png", "transfer_universal.png", "result.json"}
    data = json.loads((out / "result.json").read_text())
    names = ["m4", "m5"]
    assert data["sources"] == data["evals"] == names
    for s in names:
        for e in names:
            assert 0 <= data["pgd_accuracy"][s][e] <= 1 and 0 <= data["universal_turned"][s][e] <= 1
        # white-box PGD is never weaker than a clean evaluation
        assert data["pgd_accuracy"][s][s] <= data["clean_accuracy"][s]
