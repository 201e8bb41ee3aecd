"""The Python API (`import kerascnn as kc`) against the commands and against Keras itself.

    contract   kc.<command>(**options) gives the numbers of `kerascnn <command> ... --json` with the
               same options, and `.save()` writes the command's file names
    in memory  a keras.Model and NumPy arrays: Keras' own accuracy, no file written anywhere; arrays
               and a tf.data.Dataset (unbatched and batched) give the same numbers
    shown      every Result has Figures, an inline HTML with every figure and the table, strict JSON
    refused    one BadValue naming the argument for each bad input, never a TensorFlow traceback
    light      `import kerascnn` imports no TensorFlow; kc.evaluate traces its function once
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from kerascnn.errors import BadValue, UserError
from tests.support import cli, written

NAMES = ("cat", "dog", "fox", "owl", "yak")


def _blocks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 32, 32, 3) noise with a coloured square whose place depends on the class."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 5)
    images = rng.integers(0, 80, (n, 32, 32, 3))
    for i, c in enumerate(labels):
        images[i, 2 + 9 * (c // 3):8 + 9 * (c // 3), 2 + 9 * (c % 3):8 + 9 * (c % 3)] = np.roll([255, 120, 0], c)
    return images.astype(np.uint8), labels.astype(np.int64)


def _model(rescaling: bool = False):
    """A Sequential ending in a softmax (layers by role, not by name), optionally taking [0, 255]."""
    import keras

    keras.utils.set_random_seed(3)
    layers = [keras.Input((32, 32, 3))] + ([keras.layers.Rescaling(1 / 255)] if rescaling else []) + [
        keras.layers.Conv2D(4, 3, activation="relu", name="stem"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, 3, activation="relu", name="mix"), keras.layers.Flatten(),
        keras.layers.Dense(5, activation="softmax", name="head")]
    return keras.Sequential(layers, name="pets")


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    """(data folder, model file, (x_test uint8, y_test) in the folder's order, the keras model)."""
    from kerascnn.data.folders import write_image_folder
    from kerascnn.outputs import store

    root = tmp_path_factory.mktemp("api_pets")
    x_train, y_train = _blocks(40, 1)
    x_test, y_test = _blocks(20, 2)
    write_image_folder(root / "data", x_train, y_train, NAMES, "train")
    write_image_folder(root / "data", x_test, y_test, NAMES, "test")
    order = np.argsort(y_test, kind="stable")  # the folder's order: by class, then by file name
    model = _model()
    store.save_model(model, root / "pets.keras")
    return root / "data", root / "pets.keras", (x_test[order], y_test[order]), model


# ---------------------------------------------------------------------------- the contract
CASES = [  # (command words, CLI options, API keywords)
    ("evaluate", [], {}),
    ("filters", [], {}),
    ("filters", ["--maximize", "--steps", "3"], {"maximize": True, "steps": 3}),
    ("activations", ["--index", "3"], {"index": 3}),
    ("occlude", ["--index", "3", "--patch", "8", "--stride", "8"], {"index": 3, "patch": 8, "stride": 8}),
    ("explain", ["--index", "3", "--method", "saliency,gradcam"], {"index": 3, "method": "saliency,gradcam"}),
    ("explain", ["--faithfulness", "--count", "4", "--randomise", "1", "--method", "saliency"],
     {"faithfulness": True, "count": 4, "randomise": 1, "method": "saliency"}),
    ("attack nontargeted", ["--steps", "4"], {"steps": 4}),
    ("attack targeted", ["--steps", "4", "--target", "dog"], {"steps": 4, "guide": "dog"}),
    ("attack noise", ["--steps", "4", "--universal", "5", "--target", "fox"], {"steps": 4, "universal": 5,
                                                                             "target": "fox"}),
    ("attack minimal", ["--count", "4", "--steps", "8", "--no-fab"], {"count": 4, "steps": 8, "fab": False}),
    ("attack universal", ["--fit", "10", "--count", "10", "--epochs", "1"], {"fit": 10, "count": 10, "epochs": 1}),
    ("robustness", ["--attack", "fgsm,pgd", "--count", "10", "--eps", "0.05,0.1", "--steps", "3", "--sanity", "4"],
     {"attacks": "fgsm,pgd", "count": 10, "eps": [0.05, 0.1], "steps": 3, "sanity": 4}),
    ("certify", ["--count", "3", "--n0", "10", "--n", "100"], {"count": 3, "n0": 10, "n": 100}),
    ("corruptions", ["--corruption", "gaussian_noise,fog", "--severity", "1,3", "--count", "6"],
     {"corruptions": "gaussian_noise,fog", "severities": (1, 3), "count": 6}),
]
VOLATILE = {"seconds", "time", "created", "images_per_second", "samples_per_second", "elapsed"}


def _call(words: str):
    import kerascnn as kc

    if words.startswith("attack "):
        return getattr(kc.attack, words.split()[1])
    return getattr(kc, words)


def assert_same(a, b, where="result"):
    """Equal JSON, floats to 1e-5 relative; timings left out."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) - VOLATILE == set(b) - VOLATILE, (where, set(a) ^ set(b))
        for k in set(a) - VOLATILE:
            if not any(v in k for v in ("second", "path")):
                assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6), (where, a, b)
    else:
        assert a == b, (where, a, b)


@pytest.mark.parametrize("words,flags,keywords", CASES, ids=[f"{c[0].replace(' ', '-')}{'-' + c[1][0].strip('-') if c[1] and c[1][0] in ('--maximize', '--faithfulness') else ''}" for c in CASES])
def test_the_function_gives_the_commands_numbers_and_files(pets, tmp_path, words, flags, keywords):
    folder, model_path, _, _ = pets
    out = tmp_path / "cli"
    ran = cli(*words.split(), "--model", model_path, "--data-dir", folder, *flags, "--out", out, "--json")
    assert ran.exit_code == 0, ran.output
    expected = json.loads(ran.stdout)
    if words not in ("evaluate", "filters", "activations"):
        keywords = keywords | {"progress": False}
    result = _call(words)(model_path, str(folder), **keywords)
    assert_same(result.to_dict(), expected)
    saved = result.save(tmp_path / "api")
    assert written(saved) == written(out)


def test_transfer_train_and_summary_keep_the_contract(pets, tmp_path):
    import kerascnn as kc

    folder, model_path, _, _ = pets
    ran = cli("transfer", "--data-dir", folder, "--source-model", model_path, "--count", 6, "--fit", 6, "--steps", 3,
              "--out", tmp_path / "t_cli", "--json")
    assert ran.exit_code == 0, ran.output
    result = kc.transfer([model_path], data=str(folder), count=6, fit=6, steps=3)
    assert_same(result.to_dict(), json.loads(ran.stdout))
    assert written(result.save(tmp_path / "t_api")) == written(tmp_path / "t_cli")

    ran = cli("train", "--data-dir", folder, "--epochs", 1, "--batch-size", 8, "--out", tmp_path / "run_cli")
    assert ran.exit_code == 0, ran.output
    run = kc.train(str(folder), epochs=1, batch_size=8, out=tmp_path / "run_api", progress=False)
    by_cli = json.loads((tmp_path / "run_cli" / "metrics.json").read_text())
    assert run.metrics["test_accuracy"] == by_cli["test_accuracy"]
    assert run.metrics["test_loss"] == pytest.approx(by_cli["test_loss"], rel=1e-6)
    assert sorted(os.listdir(tmp_path / "run_api")) == sorted(os.listdir(tmp_path / "run_cli"))
    in_memory = kc.train(str(folder), epochs=1, batch_size=8, progress=False)
    assert in_memory.out_dir is None and in_memory.metrics["test_loss"] == pytest.approx(by_cli["test_loss"], rel=1e-6)
    assert written(in_memory.save(tmp_path / "run_saved")) >= {"model.keras", "metrics.json", "loss.png"}

    ran = cli("summary", "--data-dir", folder, "--json")
    assert ran.exit_code == 0, ran.output
    assert kc.summary(data=str(folder)).to_dict() == json.loads(ran.stdout)


# ---------------------------------------------------------------------------- in memory
def test_a_model_in_memory_on_arrays_matches_keras_and_writes_nothing(pets, tmp_path, monkeypatch):
    import tempfile

    import kerascnn as kc

    _, _, (x, y), model = pets
    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir(), temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, keras_accuracy = model.evaluate(x.astype(np.float32) / 255, y, verbose=0)
    result = kc.evaluate(model, (x, y), class_names=NAMES)
    assert result.to_dict()["accuracy"] == pytest.approx(keras_accuracy, abs=1e-6)
    assert result.to_dict()["class_names"] == list(NAMES)
    assert os.listdir(work) == []
    # TensorFlow's autograph writes its generated code there: not ours, and not the user's data
    assert [f for f in os.listdir(temp) if not f.startswith("__autograph_generated_file")] == []


def test_arrays_and_datasets_give_the_same_numbers(pets):
    import tensorflow as tf

    import kerascnn as kc

    _, _, (x, y), model = pets
    floats = x.astype(np.float32) / 255
    reference = kc.evaluate(model, (x, y)).to_dict()
    for data in ((floats, y), tf.data.Dataset.from_tensor_slices((x, y)),
                 tf.data.Dataset.from_tensor_slices((x, y)).batch(7)):
        assert_same(kc.evaluate(model, data).to_dict(), reference)


def test_a_model_taking_0_255_folds_its_domain_once(pets):
    """The same weights behind Rescaling(1/255) (domain read off the model) give the same numbers."""
    import kerascnn as kc

    _, _, (x, y), model = pets
    scaled = _model(rescaling=True)
    scaled.set_weights(model.get_weights())
    plain = kc.occlude(model, (x, y), index=2, patch=8, stride=8).to_dict()["positions"]
    folded = kc.occlude(scaled, (x, y), index=2, patch=8, stride=8).to_dict()["positions"]
    by_hand = model.predict(x[2:3].astype(np.float32) / 255, verbose=0)[0, y[2]]
    assert [p["prob_true"] for p in folded] == pytest.approx([p["prob_true"] for p in plain], abs=1e-5)
    assert kc.evaluate(scaled, (x, y)).to_dict()["accuracy"] == kc.evaluate(model, (x, y)).to_dict()["accuracy"]
    clean = kc.occlude(scaled, (x, y), index=2, patch=8, stride=8).to_dict()["clean"]["prob_true"]
    assert clean == pytest.approx(float(by_hand), abs=1e-5)


# ---------------------------------------------------------------------------- shown
def test_every_result_shows_itself(pets):
    import matplotlib.figure
    import matplotlib.pyplot as plt

    import kerascnn as kc

    _, _, (x, y), model = pets
    for result in (kc.evaluate(model, (x, y)), kc.occlude(model, (x, y), index=0, map=True, progress=False),
                   kc.explain(model, (x, y), index=1, method="saliency")):
        figures = result.figures()
        assert figures and all(isinstance(f, matplotlib.figure.Figure) for f in figures.values())
        for figure in figures.values():  # the caller owns them
            plt.close(figure)
        page = result._repr_html_()
        assert page.count("<img") == len(figures) and "data:image/png;base64," in page
        assert result.table().splitlines()[0] in page.replace("&#x27;", "'")
        json.dumps(result.to_dict(), allow_nan=False)


# ---------------------------------------------------------------------------- refused
def _two_outputs():
    import keras

    inputs = keras.Input((32, 32, 3))
    flat = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, [keras.layers.Dense(5)(flat), keras.layers.Dense(5)(flat)])


@pytest.mark.parametrize("case,param,words", [
    ("lengths", "y", "same length"), ("labels", "y", "outside"), ("floats255", "x", "input_range"),
    ("two_outputs", None, "one output"), ("one_class", "y", "two classes"),
    ("batch0", "batch_size", "at least 1"), ("unknown_option", "pach", "not an option")])
def test_bad_input_is_one_exception_naming_the_argument(pets, case, param, words):
    import kerascnn as kc

    _, _, (x, y), model = pets
    calls = {
        "lengths": lambda: kc.evaluate(model, (x, y[:-1])),
        "labels": lambda: kc.evaluate(model, (x, np.where(y == 0, 7, y))),
        "floats255": lambda: kc.evaluate(model, (x.astype(np.float32), y)),
        "two_outputs": lambda: kc.evaluate(_two_outputs(), (x, y)),
        "one_class": lambda: kc.train(((x, np.zeros_like(y)), (x, np.zeros_like(y))), epochs=1),
        "batch0": lambda: kc.evaluate(model, (x, y), batch_size=0),
        "unknown_option": lambda: kc.occlude(model, (x, y), index=0, pach=3),
    }
    with pytest.raises(UserError) as error:
        calls[case]()
    text = str(error.value)
    assert words in text and "\n" not in text and "Traceback" not in text
    assert getattr(error.value, "param", None) == param
    if param is None:
        assert "model" in text


# ---------------------------------------------------------------------------- light
def test_importing_kerascnn_imports_no_tensorflow():
    code = ("import sys, time; t = time.perf_counter(); import kerascnn as kc; kc.__version__; "
            "print(time.perf_counter() - t, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    seconds, tf, keras = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                        check=True).stdout.split()
    assert (tf, keras) == ("False", "False")
    assert float(seconds) < 0.5


def test_evaluate_traces_once_for_one_model(pets):
    """Twenty calls on one in-memory model (ending in a softmax, so its logits model is derived):
    one compiled function, traced once."""
    import kerascnn as kc
    from kerascnn.api.inputs import subject
    from kerascnn.model import predict

    _, _, (x, y), _ = pets
    model = _model()
    kc.evaluate(model, (x, y))
    functions = len(predict._LOGITS_FNS)
    for _ in range(19):
        kc.evaluate(model, (x[:7], y[:7]))
    fn = predict._LOGITS_FNS[subject(model, (x, y)).logits_model]
    assert len(predict._LOGITS_FNS) == functions
    assert fn.experimental_get_tracing_count() == 1


def test_report_and_export_keep_the_contract(pets, tmp_path):
    """kc.report and kc.export write what the commands write, with the same numbers."""
    import kerascnn as kc

    folder, model_path, _, model = pets
    ran = cli("report", "--data-dir", folder, "--model", model_path, "--sections", "evaluation,occlusion",
              "--out", tmp_path / "r_cli")
    assert ran.exit_code == 0, ran.output
    report = kc.report(tmp_path / "r_api", data=str(folder), model=model_path, sections="evaluation,occlusion")
    assert sorted(os.listdir(tmp_path / "r_api")) == sorted(os.listdir(tmp_path / "r_cli"))
    by_cli = (tmp_path / "r_cli" / "report.md").read_text().splitlines()
    by_api = report.markdown.read_text().splitlines()
    volatile = ("seconds", " s ", "written", "kerascnn ")  # timings and the header's date
    kept = [line for line in by_api if not any(v in line for v in volatile)]
    assert len(kept) > 10 and kept == [line for line in by_cli if not any(v in line for v in volatile)]

    ran = cli("export", "--model", model_path, "--data-dir", folder, "--out", tmp_path / "e_cli")
    assert ran.exit_code == 0, ran.output
    exported = kc.export(model, tmp_path / "e_api", data=str(folder))
    assert exported.checks and all(c.argmax_agreement == 1.0 for c in exported.checks)
    assert sorted(os.listdir(tmp_path / "e_api")) == sorted(os.listdir(tmp_path / "e_cli"))
