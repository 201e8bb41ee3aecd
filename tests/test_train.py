"""`kerascnn train` through the CLI: its files, resume, refusals, and tasks other than MNIST."""
import json

import numpy as np
import pytest

from kerascnn.data import folders, sources
from kerascnn.outputs import store
from tests.support import assert_one_line_error, cli, load_model

RUN_FILES = {"model.keras", "history.csv", "steps.csv", "metrics.json", "loss.png", "accuracy.png",
             "predictions.png", "confusion.png"}
FRUIT = ["zebra", "apple", "mango", "kiwi", "plum"]  # written unsorted: class numbers follow the sorted names


@pytest.fixture(autouse=True)
def fresh_cache():
    sources.load.cache_clear()
    yield
    sources.load.cache_clear()


@pytest.fixture(scope="module")
def fruit_dir(tmp_path_factory):
    """An image folder by class: 5 classes of 32x32 RGB (train 100, test 25), each class a colour."""
    root = tmp_path_factory.mktemp("data") / "fruit"
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (5, 3))
    for split, count in (("train", 100), ("test", 25)):
        labels = np.arange(count) % 5
        images = np.clip(colours[labels][:, None, None, :] + rng.integers(-30, 30, (count, 32, 32, 3)), 0, 255)
        folders.write_image_folder(root, images.astype(np.uint8), labels, FRUIT, split)
    return root


def test_train_on_a_small_dataset_writes_every_file(tmp_path, idx_dir):
    out = tmp_path / "run"
    result = cli("train", "--data-dir", idx_dir, "--epochs", 2, "--batch-size", 32, "--val-size", 100,
                 "--val-every", 8, "--precision", "fp32", "--tensorboard", "--out", out)
    assert result.exit_code == 0, result.output
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    for name in RUN_FILES:
        assert (out / name).stat().st_size > 0, name
        assert (out / name).read_bytes()[:4] in (b"\x89PNG", b"PK\x03\x04", b"epoc", b"{\n  ") or name.endswith(".csv")
    assert {p.name for p in out.iterdir()} == RUN_FILES | {"tensorboard", ".kerascnn.json"}  # no .resume, no .lock
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["batch_size"] == 32 and metrics["batchnorm"] is False
    assert metrics["val_size"] == 100 and metrics["train_images"] == 500
    assert "test accuracy" in result.output
    assert len(store.read_csv(out / "steps.csv")) == 2 * 16
    assert f"next: kerascnn evaluate --data-dir {idx_dir} --model {out}" in result.output


def test_train_resumes_an_interrupted_run(tmp_path, idx_dir):
    from kerascnn.training.config import TrainConfig
    from kerascnn.training.fit import TrainingInterrupted, train
    from tests.test_training import StopAt

    out = tmp_path / "run"
    cfg = TrainConfig(epochs=2, batch_size=32, val_size=100, out_dir=str(out), data_dir=str(idx_dir),
                      precision="fp32")
    with pytest.raises(TrainingInterrupted):
        train(cfg, verbose=0, callbacks=(StopAt(1),))
    result = cli("train", "--data-dir", idx_dir, "--epochs", 2, "--batch-size", 32, "--val-size", 100,
                 "--precision", "fp32", "--out", out)
    assert result.exit_code == 0, result.output
    assert "resuming from epoch 1 of 2" in result.output
    assert json.loads((out / "metrics.json").read_text())["resumed_from_epoch"] == 1


@pytest.mark.parametrize("args,message", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "-1"], "--batch-size"),
    (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--subset", "1"], "--subset"),
    (["--precision", "fp8"], "--precision"),
    (["--dataset", "CIFAR 10"], "--dataset"),
])
def test_train_refuses_bad_numbers(tmp_path, args, message):
    result = cli("train", "--out", tmp_path / "never", *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]
    assert not (tmp_path / "never").exists()


def test_a_hold_out_too_large_for_the_data_names_the_flag(tmp_path, idx_dir):
    result = cli("train", "--data-dir", idx_dir, "--subset", 50, "--val-size", 50, "--out", tmp_path / "never")
    assert_one_line_error(result, "--val-size: must be between 0 and 49 for 50 training images", exit_code=2)
    assert not (tmp_path / "never").exists()


def test_train_refuses_an_unwritable_out(tmp_path, idx_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("train", "--data-dir", idx_dir, "--out", blocker / "run")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: not a directory while creating folder {blocker / 'run'}"]


def test_an_interrupted_train_says_how_to_resume_and_exits_130(tmp_path, idx_dir, monkeypatch):
    from kerascnn.training import fit as training

    def interrupted(config, *args, **kwargs):
        raise training.TrainingInterrupted(tmp_path / "run", 2)

    monkeypatch.setattr(training, "train", interrupted)
    result = cli("train", "--data-dir", idx_dir, "--val-size", 100, "--out", tmp_path / "run")
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-1] == (
        f"Error: interrupted after 2 finished epoch(s); run the same command again to resume from {tmp_path / 'run'}")


def test_a_subset_holds_out_a_tenth_of_itself(tmp_path, idx_dir):
    # --subset 500 without --val-size: the default hold-out scales (10%), it is not MNIST's 5,000
    out = tmp_path / "run"
    result = cli("train", "--data-dir", idx_dir, "--subset", 500, "--epochs", 1, "--batch-size", 64,
                 "--precision", "fp32", "--out", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["val_size"], metrics["train_images"], metrics["subset"]) == (50, 450, 500)
    assert "450 training, 50 validation, 200 test images" in result.output


def test_an_image_folder_trains_its_own_network_and_the_other_commands_follow(tmp_path, monkeypatch, fruit_dir):
    monkeypatch.chdir(tmp_path)  # the default --out is runs/<data folder>_cnn, under the current folder
    result = cli("train", "--data-dir", fruit_dir, "--epochs", 1, "--batch-size", 10, "--precision", "fp32")
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs" / "fruit_cnn"
    assert {p.name for p in out.iterdir()} == RUN_FILES | {".kerascnn.json"}
    assert "on fruit (32, 32, 3), 5 classes" in result.output and "-> runs/fruit_cnn/" in result.output
    model = load_model(out / "model.keras")
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 5)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == sorted(FRUIT) and metrics["input_shape"] == [32, 32, 3]
    assert metrics["input_range"] == [0.0, 1.0]  # the PNGs' 0-255 read as [0, 1], and the model says so
    assert not any(type(layer).__name__ in ("Rescaling", "Normalization") for layer in model.layers)
    assert (metrics["train_images"], metrics["val_size"], metrics["dataset"]) == (90, 10, "fruit")
    flat = 8 * 8 * 32
    assert metrics["params"] == (3 * 3 * 3 * 32 + 32) + (3 * 3 * 32 * 32 + 32) + (flat * 500 + 500) + (500 * 5 + 5)

    # evaluate finds the model by the task alone (runs/fruit_cnn) and names the classes
    evaluation = cli("evaluate", "--data-dir", fruit_dir, "--out", tmp_path / "eval", "--json")
    assert evaluation.exit_code == 0, evaluation.output
    report = json.loads(evaluation.stdout)
    assert report["count"] == 25 and report["class_names"] == sorted(FRUIT)
    assert set(report["per_class_accuracy"]) == set(FRUIT)
    assert report["model"] == "runs/fruit_cnn/model.keras"

    # occlude a class by name: the first test image of "mango", class 2 in sorted order; the test images
    # are counted class by class (5 each), as image_dataset_from_directory(shuffle=False) yields them
    occluded = cli("occlude", "--data-dir", fruit_dir, "--model", out, "--class", "mango", "--out", tmp_path / "occ",
                   "--json")
    assert occluded.exit_code == 0, occluded.output
    found = json.loads(occluded.stdout)
    assert found["label"] == sorted(FRUIT).index("mango") == 2 and found["index"] == 2 * 5
    assert (found["patch"], found["stride"]) == (16, 8) and len(found["positions"]) == 9  # half and a quarter of 32
    assert (tmp_path / "occ" / "occlusion.png").read_bytes()[:4] == b"\x89PNG"
    wrong = cli("occlude", "--data-dir", fruit_dir, "--model", out, "--class", "pear", "--out", tmp_path / "bad")
    assert_one_line_error(wrong, "--class: 'pear' is not a class of fruit", exit_code=2)
    assert not (tmp_path / "bad").exists()
    # the MNIST network does not fit this task: one line naming both shapes
    from kerascnn.model.network import build_model

    store.save_model(build_model(), tmp_path / "mnist.keras")
    mismatch = cli("evaluate", "--data-dir", fruit_dir, "--model", tmp_path / "mnist.keras", "--out", tmp_path / "bad")
    assert_one_line_error(mismatch, "takes (28, 28, 1) images to 10 classes, but fruit has (32, 32, 3) images in "
                                    "5 classes", exit_code=1)
    assert not (tmp_path / "bad").exists()


def test_another_tfds_dataset_through_the_cli(tmp_path, monkeypatch, tiny_model_path):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(sources, "_can_reach", lambda *a, **k: True)  # the mock's prepare is a no-op
    out = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        result = cli("train", "--dataset", "cifar10", "--epochs", 1, "--batch-size", 8, "--precision", "fp32",
                     "--out", out)
        assert result.exit_code == 0, result.output
        assert "on cifar10 (32, 32, 3), 10 classes" in result.output
        assert "36 training, 4 validation, 40 test images" in result.output
        model = load_model(out / "model.keras")
        assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
        assert json.loads((out / "metrics.json").read_text())["dataset"] == "cifar10"
        evaluation = cli("evaluate", "--dataset", "cifar10", "--model", out, "--out", tmp_path / "eval", "--json")
        assert evaluation.exit_code == 0, evaluation.output
        assert json.loads(evaluation.stdout)["count"] == 40
        # the MNIST-shaped model does not fit cifar10: one line naming both shapes
        mismatch = cli("evaluate", "--dataset", "cifar10", "--model", tiny_model_path, "--out", tmp_path / "never")
    assert_one_line_error(mismatch, "takes (28, 28, 1) images to 10 classes, but cifar10 has (32, 32, 3) images",
                          exit_code=1)
    assert not (tmp_path / "never").exists()
