"""The AutoAttack ensemble (attacks.autoattack) and the robustness checks built on it: each
component runs only on the images still right, an image counts as fooled only when re-predicted
wrong inside its ball, the running accuracy never rises, and the flags for a flattering cheap attack
and for Square beating the gradients fire exactly where the numbers say they should."""
import numpy as np
import pytest

from kerascnn.attacks import ensemble
from kerascnn.attacks.bounded_results import bounded_result
from kerascnn.errors import BadValue
from tests.test_robustness import images_of, tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=8)


def test_versions_hold_the_reference_components_in_order():
    assert ensemble.VERSIONS["standard"] == ("apgd-ce", "apgd-t", "fab-t", "square")
    assert ensemble.VERSIONS["plus"] == ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
    assert ensemble.BUDGETS["plus"]["apgd-ce"]["restarts"] == 5 and ensemble.BUDGETS["rand"]["apgd-ce"]["eot"] == 20
    assert ensemble.check_components("square, apgd-ce") == ("square", "apgd-ce")
    for bad in ("", "apgd-ce,cw"):
        with pytest.raises(BadValue):
            ensemble.check_components(bad)
    with pytest.raises(BadValue):
        ensemble.check_version("fast")


def fake_component(fooled_every: int, leave_ball: bool = False):
    """A stand-in component that flips the image to a far point every `fooled_every`-th image, and
    records which images it was given."""
    seen = []

    def run(name, model, images, labels, eps, **kwargs):
        seen.append((name, len(images)))
        out = images.copy()
        pick = np.arange(len(images)) % fooled_every == 0
        out[pick] = np.clip(out[pick] + (0.9 if leave_ball else 1.0) * eps[pick, None, None, None]
                            * np.sign(np.random.default_rng(0).normal(size=out[pick].shape)), 0, 1)
        result = bounded_result(model, name, "linf", eps, images, out, labels, False, None, 0.0, {})
        inside = result.within_ball() if not leave_ball else np.zeros(len(images), bool)
        return result, result.success & inside

    return run, seen


def test_each_component_runs_only_on_the_images_still_right(model, monkeypatch):
    images = images_of((28, 28, 1), n=30, seed=1)
    labels = model(images).numpy().argmax(1)
    labels[:4] = (labels[:4] + 1) % 10  # wrong clean: never attacked
    run, seen = fake_component(2)
    monkeypatch.setattr(ensemble, "run_component", run)
    result = ensemble.autoattack(model, images, labels, 0.5, components=("apgd-ce", "square"))
    right = result.correct_per_restart.sum(axis=1)
    assert seen[0] == ("apgd-ce", 26) and seen[1] == ("square", right[0])
    assert np.all(np.diff(right) <= 0) and right[-1] <= right[0]
    # the final accuracy is re-predicted from the returned images, by the model itself
    np.testing.assert_array_equal(result.success, model(result.images).numpy().argmax(1) != labels)
    np.testing.assert_array_equal(result.images[:4], images[:4])
    assert result.within_ball().all()


def test_an_image_out_of_its_ball_is_not_counted(model, monkeypatch):
    images = images_of((28, 28, 1), n=10, seed=2)
    labels = model(images).numpy().argmax(1)
    run, _ = fake_component(1, leave_ball=True)
    monkeypatch.setattr(ensemble, "run_component", run)
    result = ensemble.autoattack(model, images, labels, 0.3, components=("fab-t",))
    np.testing.assert_array_equal(result.images, images)  # nothing taken
    assert not result.success.any()


def test_the_real_ensemble_on_a_tiny_model(model):
    """Every component for real (small budgets): in the ball, in [0, 1], re-predicted, never above
    any of its components alone."""
    images = images_of((28, 28, 1), n=12, seed=3)
    labels = model(images).numpy().argmax(1)
    radii = np.where(np.arange(12) % 2, 0.02, 0.1).astype(np.float32)
    both = ensemble.autoattack(model, images, labels, radii, steps=8, queries=60, seed=1)
    assert both.settings["components"] == list(ensemble.VERSIONS["standard"])
    assert set(both.settings["seconds"]) == set(ensemble.VERSIONS["standard"])
    assert both.within_ball().all()
    np.testing.assert_array_equal(both.success, model(both.images).numpy().argmax(1) != labels)
    alone = ensemble.autoattack(model, images, labels, radii, steps=8, queries=60, seed=1, components=("apgd-ce",))
    assert both.success.sum() >= alone.success.sum()


def hand_result(columns: dict, after: dict, attacks):
    """A robustness Result with exactly the given accuracies (over 100 images) per column and eps."""
    from kerascnn.experiments.robustness import Options, Result

    def rows(accuracies):
        return np.array([np.arange(100) < round(100 * a) for a in accuracies])

    options = Options(attacks=attacks, eps=(0.0, 0.1, 0.3)).resolved()
    return Result(options, "m", np.zeros(100, np.int64), np.ones(100, bool), {k: rows(v) for k, v in columns.items()},
                  None, None, None, {}, np.zeros((0, 1, 1, 1)), {}, after={k: np.array(v) for k, v in after.items()})


def test_a_flattering_attack_and_a_winning_square_are_flagged():
    after = {"apgd-ce": [1.0, 0.60, 0.20], "apgd-t": [1.0, 0.56, 0.19], "fab-t": [1.0, 0.56, 0.19],
             "square": [1.0, 0.50, 0.185]}
    result = hand_result({"fgsm": [1.0, 0.8, 0.5], "pgd": [1.0, 0.65, 0.21], "autoattack": [1.0, 0.50, 0.185]},
                         after, ("fgsm", "pgd", "autoattack"))
    from kerascnn.experiments.robustness import table
    from kerascnn.experiments.robustness_checks import flags

    marks = flags(result)
    # PGD 15 points above at 0.1, 2.5 at 0.3; FGSM is not judged; Square took 6 points at 0.1, 0.5 at 0.3
    assert marks == {"above_autoattack": {"pgd": [0.1, 0.3]}, "square_beats_gradients": [0.1]}
    checks = result.checks()
    assert checks["pgd_within_2_points_of_autoattack"] is False and checks["square_adds_at_most_1_point"] is False
    shown = table(result)
    assert shown.header == ["eps", "FGSM", "PGD-40", "after APGD-CE", "after APGD-T", "after FAB-T", "AutoAttack"]
    assert shown.rows[1][2] == "65.0%*" and shown.rows[1][1] == "80.0%"


def test_an_honest_curve_raises_no_flag():
    after = {"apgd-ce": [1.0, 0.51, 0.2], "apgd-t": [1.0, 0.50, 0.19], "fab-t": [1.0, 0.50, 0.19],
             "square": [1.0, 0.50, 0.19]}
    result = hand_result({"fgsm": [1.0, 0.8, 0.5], "pgd": [1.0, 0.515, 0.2], "autoattack": [1.0, 0.50, 0.19]},
                         after, ("fgsm", "pgd", "autoattack"))
    assert all(result.checks().values()), result.checks()
