"""Adversarial training (Madry et al. 2018): each training batch is replaced, inside the compiled
training step, by attacked copies of its images made on the fly against the current weights.

    pgd   `steps` PGD steps from a random point of the eps-ball (Madry et al.: 40 steps of eps / 30;
          fewer, larger steps cost proportionally less)
    fgsm  one FGSM step of 1.25 eps from a random point (Wong, Rice and Kolter 2020, "Fast is better
          than free"): PGD with one step

The attack's eps grows linearly from 0 over the first `ramp_epochs` (a full-strength attack on an
untrained network stalls its first epoch). The attacked images are made with the network in
inference mode and are the only images the weights are fitted on; validation and the test accuracy
are measured on clean images. The cost per epoch is about (attack steps + 1) times a clean epoch's.

`wrap(model, recipe, ...)` puts a classifier inside the Keras model that trains it this way
(`adversarial_trainer.AdversarialTrainer`, registered, so that a resume checkpoint loads anywhere);
`classifier_of` takes it out again. What `kerascnn train` saves as model.keras is the plain
classifier: an ordinary model that any Keras loads.

This module does no work at import time (TrainConfig holds its recipe, read while options are parsed).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from kerascnn.errors import BadValue

ATTACKS = ("pgd", "fgsm")
#: Step size as a fraction of eps when none is given: PGD's 2.5 / steps (Madry et al.'s rule: the
#: steps together can cross the ball from side to side and back); FGSM's 1.25 (Wong et al.).
PGD_REACH, FGSM_STEP = 2.5, 1.25


@dataclass
class AdversarialRecipe:
    """What the training images are replaced with (see the module docstring)."""
    attack: str = "pgd"              # "pgd" or "fgsm" (one step from a random start)
    eps: float = 0.3                 # radius of the ball, in pixel units
    norm: str = "linf"               # "linf" or "l2"
    steps: int = 5                   # PGD steps per training batch (fgsm: always 1)
    step_fraction: float | None = None  # step size / eps (None: 2.5 / steps for pgd, 1.25 for fgsm)
    ramp_epochs: float = 1.0         # eps grows linearly from 0 over this many epochs (0: full at once)

    def check(self) -> None:
        if self.attack not in ATTACKS:
            raise BadValue("adversarial", f"must be one of {', '.join(ATTACKS)}, got {self.attack!r}")
        if self.norm not in ("linf", "l2"):
            raise BadValue("norm", f"must be one of linf, l2, got {self.norm!r}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise BadValue("eps", f"must be a positive number, got {self.eps}")
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or self.steps < 1:
            raise BadValue("attack_steps", f"must be a whole number of at least 1, got {self.steps}")
        if self.step_fraction is not None and not (math.isfinite(self.step_fraction) and self.step_fraction > 0):
            raise BadValue("attack_step", f"must be a positive number, got {self.step_fraction}")
        if not (math.isfinite(self.ramp_epochs) and self.ramp_epochs >= 0):
            raise BadValue("eps_ramp", f"must be a number >= 0, got {self.ramp_epochs}")

    @property
    def attack_steps(self) -> int:
        return 1 if self.attack == "fgsm" else int(self.steps)

    @property
    def step(self) -> float:
        """The step size as a fraction of eps."""
        if self.step_fraction is not None:
            return float(self.step_fraction)
        return FGSM_STEP if self.attack == "fgsm" else PGD_REACH / self.attack_steps

    def to_dict(self) -> dict:
        """The recipe as recorded in metrics.json and the resume key (defaults resolved)."""
        return asdict(self) | {"steps": self.attack_steps, "step_fraction": self.step,
                               "step_size": self.step * self.eps, "start": "uniform in the eps-ball"}

    def describe(self) -> str:
        what = "FGSM from a random start" if self.attack == "fgsm" else f"PGD-{self.attack_steps}"
        ramp = f", eps ramped up over {self.ramp_epochs:g} epoch(s)" if self.ramp_epochs else ""
        return f"{what} at {self.norm} eps {self.eps:g} (step {self.step * self.eps:.3g}){ramp}"


def wrap(model, recipe: AdversarialRecipe | None, steps_per_epoch: int, seed: int):
    """`model` (a classifier) inside the Keras model whose training step attacks each batch first
    (recipe None: the model itself, trained on clean images)."""
    if recipe is None:
        return model
    from kerascnn.training.adversarial_trainer import AdversarialTrainer

    recipe.check()
    return AdversarialTrainer(model, recipe.to_dict(), ramp_steps=int(round(recipe.ramp_epochs * steps_per_epoch)),
                              seed=int(seed), name=f"{model.name}_adversarial")


def classifier_of(model):
    """The classifier inside an adversarial trainer; any other model as it is."""
    return getattr(model, "classifier", model)
