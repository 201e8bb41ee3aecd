import json
from pathlib import Path

import keras
import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.outputs import store
from kerascnn.training.keras_classes import FusedAdam, StepRecorder
from kerascnn.training.config import TrainConfig
from kerascnn.training.fit import TrainingInterrupted, train


def test_fused_adam_matches_keras_adam():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(7, 3)).astype(np.float32)
    grads = [rng.normal(size=(7, 3)).astype(np.float32) for _ in range(5)]
    finals = []
    for optimizer in (keras.optimizers.Adam(0.01), FusedAdam(0.01)):
        var = keras.Variable(start)
        for g in grads:
            optimizer.apply_gradients([(g, var)])
        finals.append(var.numpy())
    assert not np.allclose(finals[0], start)
    np.testing.assert_allclose(finals[1], finals[0], rtol=1e-5, atol=1e-6)


def test_step_recorder_keeps_each_batch_when_steps_are_grouped():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    recorder = StepRecorder(capacity=8)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[recorder], steps_per_execution=4)
    x = np.random.default_rng(1).normal(size=(40, 4)).astype(np.float32)
    y = np.arange(40) % 3
    seen = []

    class Read(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(recorder.read())

    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[Read()])
    assert [count for count, _, _ in seen] == [4, 5]  # callbacks every 4 steps, yet 5 steps recorded
    _, losses, accuracies = seen[-1]
    logits = model.predict(x, verbose=0)  # lr 0: the weights are those every step saw
    for step in range(5):
        lb, yb = logits[step * 8:(step + 1) * 8], y[step * 8:(step + 1) * 8]
        expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(yb, lb)
        assert losses[step] == pytest.approx(float(expected), rel=1e-5)
        assert accuracies[step] == pytest.approx(float(np.mean(lb.argmax(1) == yb)))


def config(tmp_path, idx_dir, **kw):
    values = dict(epochs=2, batch_size=32, val_size=100, out_dir=str(tmp_path / "run"), data_dir=str(idx_dir),
                  precision="fp32", steps_per_execution=4, val_every=5)
    values.update(kw)
    return TrainConfig(**values)


def test_train_writes_every_file_and_learns(tmp_path, idx_dir):
    result = train(config(tmp_path, idx_dir), verbose=0)
    out = tmp_path / "run"
    for name in ("model.keras", "history.csv", "steps.csv", "metrics.json"):
        assert (out / name).is_file(), name
    assert not (out / ".resume").exists()
    steps_per_epoch = -(-500 // 32)
    steps = store.read_csv(out / "steps.csv")
    assert [int(r["step"]) for r in steps] == list(range(1, 2 * steps_per_epoch + 1))
    assert all(r["loss"] is not None and 0 <= r["accuracy"] <= 1 for r in steps)
    val_rows = [r for r in steps if r["val_loss"] is not None]
    assert len(val_rows) > 2  # every ~5 iterations and at both epoch ends
    assert int(steps[steps_per_epoch - 1]["step"]) in [int(r["step"]) for r in val_rows]
    history = store.read_csv(out / "history.csv")
    assert [int(r["epoch"]) for r in history] == [1, 2]
    assert history[-1]["val_loss"] == pytest.approx(steps[-1]["val_loss"])
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "params", "epochs", "batch_size", "batchnorm", "lr", "seed",
                "train_seconds", "images_per_second", "tensorflow_version", "keras_version", "precision"):
        assert key in metrics, key
    assert metrics["params"] == 799_078 and metrics["precision"] == "fp32"
    assert metrics["test_accuracy"] == pytest.approx(result.test.accuracy)
    assert metrics["test_accuracy"] > 0.5  # the synthetic classes are easy; chance is 0.1
    # the saved model is plain Keras: no custom objects needed to load it
    loaded = keras.models.load_model(out / "model.keras")
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded(x), result.model(x), atol=1e-6)


def test_epoch_end_validation_is_the_trained_models_plain_cross_entropy(tmp_path, idx_dir):
    seen = []

    class Later(keras.callbacks.Callback):  # a user's callback, after the project's own
        def on_epoch_end(self, epoch, logs=None):
            seen.append((logs["val_loss"], logs["val_accuracy"]))

    cfg = config(tmp_path, idx_dir, epochs=1, label_smoothing=0.2)
    result = train(cfg, verbose=0, callbacks=(Later(),))
    data = cfg.task.splits(cfg.val_size, cfg.seed, cfg.subset)
    logits = result.model.predict(data.x_val, verbose=0).astype(np.float64)
    logits -= logits.max(1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    loss = -log_p[np.arange(len(data.y_val)), data.y_val].mean()  # no smoothing, whatever the recipe
    accuracy = np.mean(logits.argmax(1) == data.y_val)
    assert seen == [(result.history[-1]["val_loss"], result.history[-1]["val_accuracy"])]
    assert result.history[-1]["val_loss"] == pytest.approx(loss, rel=1e-4)
    assert result.history[-1]["val_accuracy"] == pytest.approx(accuracy)
    assert result.steps[-1]["val_loss"] == result.history[-1]["val_loss"]


def test_the_training_step_creates_no_variables_so_it_is_traced_once():
    # TensorFlow traces a function twice when its first trace creates variables (optimizer slots,
    # metric totals made lazily): compile_for_training makes them all beforehand.
    import tensorflow as tf

    from kerascnn.model.network import build_model
    from kerascnn.training.compiling import compile_for_training

    model = build_model(input_shape=(8, 8, 1), num_classes=3)
    compile_for_training(model, TrainConfig(steps_per_execution=2), steps_per_epoch=4)
    created = []

    def creator(next_creator, **kwargs):
        created.append(kwargs.get("name"))
        return next_creator(**kwargs)

    x = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32)
    y = np.arange(8) % 3
    with tf.variable_creator_scope(creator):
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert created == []
    assert model.optimizer.iterations.numpy() == 2


def test_bf16_batchnorm_run_trains(tmp_path, idx_dir):
    result = train(config(tmp_path, idx_dir, batchnorm=True, precision="bf16", epochs=1), verbose=0)
    assert result.metrics["precision"] == "bf16" and result.metrics["batchnorm"]
    assert result.model.get_layer("conv1").compute_dtype == "float32"  # the saved model is float32
    # 16 steps are too few for batch norm's moving statistics (momentum 0.99) to settle, so judge
    # the learning by the training loss rather than by inference-mode accuracy
    losses = [row["loss"] for row in result.steps]
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])


class StopAt(keras.callbacks.Callback):
    """Simulates Ctrl-C at the start of an epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupted_training_resumes_from_the_last_finished_epoch(tmp_path, idx_dir):
    cfg = config(tmp_path, idx_dir, epochs=3)
    with pytest.raises(TrainingInterrupted) as stopped:
        train(cfg, verbose=0, callbacks=(StopAt(1),))
    assert stopped.value.epochs_done == 1
    out = tmp_path / "run"
    assert not (out / "model.keras").exists()  # never a half-finished model
    assert json.loads((out / ".resume" / "state.json").read_text())["epochs_done"] == 1
    assert len(store.read_csv(out / ".resume" / "history.csv")) == 1  # the unfinished run's, until it finishes
    assert not (out / "history.csv").exists()

    resumed = train(cfg, verbose=0)
    assert resumed.resumed_from == 1
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert [row["step"] for row in resumed.steps] == list(range(1, 3 * 16 + 1))
    assert (out / "model.keras").is_file() and not (out / ".resume").exists()

    # the same recipe without the interruption gives the same network: data order and optimizer
    # state were restored exactly
    unbroken = train(config(tmp_path / "b", idx_dir, epochs=3), verbose=0)
    for a, b in zip(unbroken.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_a_different_recipe_starts_afresh(tmp_path, idx_dir):
    with pytest.raises(TrainingInterrupted):
        train(config(tmp_path, idx_dir, epochs=3), verbose=0, callbacks=(StopAt(1),))
    result = train(config(tmp_path, idx_dir, epochs=2, lr=5e-4), verbose=0)
    assert result.resumed_from == 0


@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", -1), ("lr", 0.0), ("lr", float("nan")),
                                         ("precision", "fp8"), ("val_size", 0), ("subset", 1)])
def test_bad_config_is_refused_before_work(tmp_path, field, value):
    # the library names its parameters (the CLI maps them to flags: test_train.py)
    with pytest.raises(BadValue, match=f"^{field}: ") as error:
        train(TrainConfig(out_dir=str(tmp_path / "never"), **{field: value}))
    assert error.value.param == field
    assert not (tmp_path / "never").exists()


def test_cosine_schedule_decays_from_lr_to_zero_over_the_run():
    from kerascnn.training.compiling import learning_rate

    cfg = TrainConfig(epochs=2, lr=1e-3)
    schedule = learning_rate(cfg, steps_per_epoch=50)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(50)) == pytest.approx(5e-4, rel=1e-3)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert learning_rate(TrainConfig(lr_schedule="constant", lr=3e-4), 50) == 3e-4
    # extending a cosine run changes its schedule, so it cannot be resumed under another length
    assert TrainConfig(epochs=2).resume_key() != TrainConfig(epochs=3).resume_key()
    assert (TrainConfig(epochs=2, lr_schedule="constant").resume_key()
            == TrainConfig(epochs=3, lr_schedule="constant").resume_key())


def test_shuffled_batches_depend_only_on_seed_and_epoch():
    import tensorflow as tf

    from kerascnn.data.pipelines import shuffled_batches

    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    labels = np.arange(10, dtype=np.int64)

    def epoch_order(seed, epoch):
        var = tf.Variable(epoch, dtype=tf.int64)
        ds = shuffled_batches(images, labels, 4, seed, var)
        assert int(ds.cardinality()) == 3
        return np.concatenate([y.numpy() for _, y in ds])

    first = epoch_order(0, 0)
    assert sorted(first) == list(range(10))  # every image once per epoch
    np.testing.assert_array_equal(first, epoch_order(0, 0))
    assert not np.array_equal(first, epoch_order(0, 1))
    assert not np.array_equal(first, epoch_order(1, 0))
    # the epoch is read each time the pipeline is iterated: a resumed run sees the same order
    var = tf.Variable(0, dtype=tf.int64)
    ds = shuffled_batches(images, labels, 4, 0, var)
    var.assign(1)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in ds]), epoch_order(0, 1))
    # images and labels stay paired
    for x, y in shuffled_batches(images, labels, 4, 0, var):
        np.testing.assert_array_equal(x.numpy().reshape(-1), y.numpy())


def test_noise_augmentation_is_gaussian_seeded_and_the_same_on_resume():
    """--noise-sd: each batch is its images plus N(0, sd^2) noise, unclipped, drawn from (seed, epoch,
    batch), so a resumed epoch sees the very same noise; labels stay paired."""
    import tensorflow as tf

    from kerascnn.data.pipelines import shuffled_batches

    images = np.full((400, 4, 4, 1), 0.5, np.float32) + np.arange(400, dtype=np.float32).reshape(400, 1, 1, 1)
    labels = np.arange(400, dtype=np.int64)

    def epoch(epoch, sd=0.3):
        var = tf.Variable(epoch, dtype=tf.int64)
        return [(x.numpy(), y.numpy()) for x, y in shuffled_batches(images, labels, 50, 0, var, sd)]

    first = epoch(0)
    noise = np.concatenate([x - images[y] for x, y in first])
    assert abs(noise.mean()) < 0.02 and noise.std() == pytest.approx(0.3, rel=0.05)
    assert noise.min() < -0.5 and noise.max() > 0.5  # unclipped
    again = epoch(0)
    for (x, y), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(np.concatenate([x for x, _ in epoch(1)]), np.concatenate([x for x, _ in first]))
    # batches differ from each other (no noise pattern repeated)
    assert not np.allclose(first[0][0] - images[first[0][1]], first[1][0] - images[first[1][1]])
    clean = epoch(0, sd=0.0)
    assert all(np.array_equal(x, images[y]) for x, y in clean)
    assert TrainConfig(noise_sd=0.25).resume_key() != TrainConfig().resume_key()
    with pytest.raises(BadValue):
        TrainConfig(noise_sd=-1).check()


def test_default_out_dirs_never_name_the_shipped_models(tmp_path, idx_dir):
    from kerascnn.data.tasks import Task
    from kerascnn.training.config import default_out_dir

    assert default_out_dir(Task(), False) == Path("runs/cnn")
    assert default_out_dir(Task(), True) == Path("runs/cnn_bn")
    assert default_out_dir(Task("cifar10"), False) == Path("runs/cifar10_cnn")
    assert default_out_dir(Task(data_dir=str(idx_dir)), True) == Path(f"runs/{idx_dir.name}_cnn_bn")
    assert TrainConfig().resolved_out_dir() == Path("runs/cnn")
    assert TrainConfig(out_dir=str(tmp_path)).resolved_out_dir() == tmp_path


def test_a_diverging_run_stops_at_its_first_non_finite_step_and_saves_nothing(tmp_path, idx_dir, monkeypatch):
    from kerascnn.training import compiling
    from kerascnn.training.callbacks import TrainingDiverged

    # An infinite learning rate: step 1's loss is computed with the initial weights (finite), its
    # update makes them infinite, so step 2 is the first whose loss is not finite.
    monkeypatch.setattr(compiling, "learning_rate", lambda config, steps_per_epoch: float("inf"))
    with pytest.raises(TrainingDiverged) as error:
        train(config(tmp_path, idx_dir, epochs=2, steps_per_execution=8), verbose=0)
    assert "epoch 1, step 2" in str(error.value) and "smaller lr" in str(error.value)
    out = tmp_path / "run"
    assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()
