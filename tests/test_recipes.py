"""Named training recipes (`--recipe fast`), the warm-up schedule and label smoothing."""
import math

import numpy as np
import pytest

from kerascnn.errors import BadValue, UserError
from kerascnn.training.compiling import learning_rate
from kerascnn.training.config import TrainConfig
from kerascnn.training.fit import TrainingInterrupted, train
from kerascnn.training.recipes import RECIPES
from tests.support import assert_one_line_error, cli
from tests.test_training import StopAt, config


def test_a_recipe_sets_its_fields_and_given_fields_override_them():
    fast = TrainConfig.from_recipe("fast")
    assert RECIPES["fast"] and all(getattr(fast, k) == v for k, v in RECIPES["fast"].items())
    assert fast.epochs != TrainConfig().epochs or fast.batch_size != TrainConfig().batch_size
    assert TrainConfig.from_recipe("assignment") == TrainConfig()
    mine = TrainConfig.from_recipe("fast", epochs=7, seed=3)
    assert mine.epochs == 7 and mine.seed == 3 and mine.batch_size == RECIPES["fast"]["batch_size"]
    with pytest.raises(BadValue, match="^recipe: must be one of assignment, fast, got quick$"):
        TrainConfig.from_recipe("quick")


def test_warmup_cosine_follows_its_closed_form():
    cfg = TrainConfig(lr_schedule="warmup_cosine", lr=4e-3, warmup=0.2, epochs=2)
    schedule = learning_rate(cfg, steps_per_epoch=50)  # 100 steps, 20 of them rising
    warm, total = 20, 100

    def closed(step):
        if step < warm:
            return cfg.lr * step / warm
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))

    for step in (0, 10, warm, 60, total - 1, total):
        assert float(schedule(step)) == pytest.approx(closed(step), abs=1e-9), step
    assert float(schedule(0)) == 0.0 and float(schedule(warm)) == pytest.approx(4e-3)
    assert float(schedule(total)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("field,value", [("lr_schedule", "onecycle"), ("warmup", 1.0), ("warmup", -0.1),
                                         ("label_smoothing", 1.0), ("label_smoothing", -0.1)])
def test_bad_schedule_and_smoothing_values_are_refused(field, value):
    with pytest.raises(BadValue, match=f"^{field}: "):
        TrainConfig(**{field: value}).check()


def test_resume_key_holds_warmup_and_smoothing():
    base = TrainConfig(lr_schedule="warmup_cosine")
    assert base.resume_key() != TrainConfig(lr_schedule="warmup_cosine", warmup=0.3).resume_key()
    assert base.resume_key() != TrainConfig(lr_schedule="warmup_cosine", label_smoothing=0.1).resume_key()
    assert base.resume_key() != TrainConfig(lr_schedule="warmup_cosine", epochs=6).resume_key()


def test_smoothed_loss_matches_its_formula():
    from kerascnn.training.keras_classes import SmoothedSparseCrossentropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 10)).astype("float32")
    labels = rng.integers(0, 10, 6)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    for s in (0.0, 0.1):
        target = np.full((6, 10), s / 10) + (1 - s) * np.eye(10)[labels]
        expected = -(target * logp).sum(1).mean()
        assert float(SmoothedSparseCrossentropy(s)(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_a_smoothed_warmup_run_resumes_exactly(tmp_path, idx_dir):
    kw = dict(epochs=2, lr_schedule="warmup_cosine", warmup=0.25, label_smoothing=0.1)
    with pytest.raises(TrainingInterrupted):
        train(config(tmp_path, idx_dir, **kw), verbose=0, callbacks=(StopAt(1),))
    resumed = train(config(tmp_path, idx_dir, **kw), verbose=0)
    assert resumed.resumed_from == 1 and resumed.metrics["label_smoothing"] == 0.1
    unbroken = train(config(tmp_path / "b", idx_dir, **kw), verbose=0)
    for a, b in zip(unbroken.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.fixture
def seen(monkeypatch):
    """The TrainConfig `kerascnn train` builds; training itself is stopped."""
    from kerascnn.training import fit as training

    configs = []

    def fake_train(cfg, *args, **kwargs):
        configs.append(cfg)
        raise UserError("stopped by the test")

    monkeypatch.setattr(training, "train", fake_train)
    return configs


def test_cli_recipe_reaches_the_config_and_explicit_options_override_it(tmp_path, idx_dir, seen):
    common = ("--data-dir", idx_dir, "--subset", 200)
    result = cli("train", "--recipe", "fast", *common, "--out", tmp_path / "a")
    assert result.exit_code == 1 and "stopped by the test" in result.output, result.output
    assert all(getattr(seen[-1], k) == v for k, v in RECIPES["fast"].items())
    assert "recipe fast" in result.output
    result = cli("train", "--recipe", "fast", *common, "--epochs", 3, "--lr", 0.01, "--lr-schedule", "cosine",
                 "--out", tmp_path / "b")
    assert result.exit_code == 1, result.output
    cfg = seen[-1]
    assert (cfg.epochs, cfg.lr, cfg.lr_schedule) == (3, 0.01, "cosine")
    assert cfg.batch_size == RECIPES["fast"]["batch_size"]  # not given: the recipe's
    # an explicit value equal to the assignment's default still wins over the recipe
    result = cli("train", "--recipe", "fast", *common, "--batch-size", 16, "--out", tmp_path / "c")
    assert seen[-1].batch_size == 16
    cli("train", *common, "--out", tmp_path / "d")  # no recipe: the assignment's
    assert seen[-1] == TrainConfig(data_dir=str(idx_dir), subset=200, out_dir=str(tmp_path / "d"))


def test_cli_fast_recipe_has_its_own_default_folder(tmp_path, idx_dir, seen, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli("train", "--recipe", "fast", "--data-dir", idx_dir, "--subset", 200)
    assert seen[-1].out_dir.endswith("_fast")


def test_cli_unknown_recipe_exits_2_with_one_line(tmp_path):
    result = cli("train", "--recipe", "quick", "--out", tmp_path / "never")
    assert_one_line_error(result, "--recipe: must be one of assignment, fast, got quick", exit_code=2)
    assert not (tmp_path / "never").exists()
