"""Adversarial training (kerascnn.training.adversarial): the recipe's checks, the attacked batch inside the
ball, a run that resumes like any other and records its recipe, a saved model any Keras loads, and
`kerascnn train --adversarial`'s option checks."""
import json

import keras
import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.training.adversarial import AdversarialRecipe, classifier_of, wrap
from tests.support import cli


@pytest.mark.parametrize("kwargs, param", [({"eps": 0}, "eps"), ({"eps": -0.1}, "eps"), ({"attack": "cw"}, "adversarial"),
                                           ({"steps": 0}, "attack_steps"), ({"norm": "l1"}, "norm"),
                                           ({"ramp_epochs": -1}, "eps_ramp"), ({"step_fraction": 0}, "attack_step")])
def test_the_recipe_refuses_bad_values(kwargs, param):
    with pytest.raises(BadValue) as error:
        AdversarialRecipe(**kwargs).check()
    assert error.value.param == param


def test_default_step_sizes_follow_the_papers():
    assert AdversarialRecipe("pgd", steps=5).step == pytest.approx(2.5 / 5)  # Madry et al.'s 2.5 eps / steps
    assert AdversarialRecipe("fgsm").step == 1.25 and AdversarialRecipe("fgsm", steps=9).attack_steps == 1
    assert AdversarialRecipe(step_fraction=0.1).to_dict()["step_size"] == pytest.approx(0.03)


@pytest.mark.parametrize("norm, eps", [("linf", 0.3), ("l2", 2.0)])
def test_the_attacked_batch_stays_in_the_ball(norm, eps):
    from kerascnn.model.network import build_model

    trainer = wrap(build_model(), AdversarialRecipe(norm=norm, eps=eps, steps=3, ramp_epochs=0), 10, seed=0)
    trainer.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    attacked = trainer.attacked(x, np.arange(8) % 10).numpy()
    delta = (attacked - x).reshape(8, -1)
    size = np.abs(delta).max(axis=1) if norm == "linf" else np.sqrt((delta.astype(np.float64) ** 2).sum(axis=1))
    assert np.all(size <= eps * (1 + 1e-5)) and np.all(size > 0)
    assert attacked.min() >= 0 and attacked.max() <= 1
    assert classifier_of(trainer) is trainer.classifier and classifier_of(trainer.classifier) is trainer.classifier


def test_eps_ramps_up_over_the_first_steps():
    from kerascnn.model.network import build_model

    trainer = wrap(build_model(), AdversarialRecipe(eps=0.3, ramp_epochs=2), steps_per_epoch=5, seed=0)
    trainer.compile(optimizer="adam", loss="mse")
    trainer.optimizer.build(trainer.trainable_variables)
    assert float(trainer.current_eps()) == pytest.approx(0.3 / 10)
    trainer.optimizer.iterations.assign(9)
    assert float(trainer.current_eps()) == pytest.approx(0.3)


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt


def test_an_adversarial_run_resumes_and_saves_an_ordinary_model(idx_dir, tmp_path):
    from kerascnn.training.config import TrainConfig
    from kerascnn.training.fit import TrainingInterrupted, train

    recipe = AdversarialRecipe("pgd", eps=0.2, steps=2)
    config = TrainConfig(data_dir=str(idx_dir), epochs=2, batch_size=32, subset=320, val_size=64, val_every=0,
                         out_dir=str(tmp_path / "adv"), adversarial=recipe, precision="fp32")
    with pytest.raises(TrainingInterrupted):
        train(config, verbose=0, callbacks=(StopAfterFirstEpoch(),))
    result = train(config, verbose=0)
    assert result.resumed_from == 1 and len(result.history) == 2
    metrics = json.loads((tmp_path / "adv" / "metrics.json").read_text())
    assert metrics["adversarial"] == recipe.to_dict() | {"steps": 2}
    assert metrics["adversarial"]["attack"] == "pgd" and metrics["resumed_from_epoch"] == 1
    loaded = keras.models.load_model(tmp_path / "adv" / "model.keras", compile=False)  # no custom objects
    assert type(loaded).__name__ == "Functional" and loaded.count_params() == result.model.count_params()
    assert not (tmp_path / "adv" / ".resume").exists()


def test_a_changed_recipe_does_not_resume(idx_dir, tmp_path):
    from kerascnn.training.config import TrainConfig

    base = TrainConfig(data_dir=str(idx_dir), adversarial=AdversarialRecipe(eps=0.2))
    other = TrainConfig(data_dir=str(idx_dir), adversarial=AdversarialRecipe(eps=0.3))
    assert base.resume_key() != other.resume_key() != TrainConfig(data_dir=str(idx_dir)).resume_key()


@pytest.mark.parametrize("args, fragment", [(["--eps", "0.3"], "--adversarial"),
                                            (["--adversarial", "pgd", "--eps", "0"], "--eps"),
                                            (["--adversarial", "pgd", "--attack-steps", "0"], "--attack-steps"),
                                            (["--adversarial", "madry"], "--adversarial")])
def test_train_refuses_bad_adversarial_options(args, fragment, idx_dir, tmp_path):
    result = cli("train", *args, "--data-dir", idx_dir, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and fragment in result.output
    assert not (tmp_path / "o").exists()
