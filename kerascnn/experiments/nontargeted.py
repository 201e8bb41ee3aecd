"""Nontargeted attack: grow one image per class from Gaussian noise until the model calls it that
class with probability >= confidence (see kerascnn.attacks for the loop and the optimizers)."""
from __future__ import annotations

from dataclasses import dataclass

from kerascnn import attacks
from kerascnn.experiments.common import attack_settings, attack_table_rows
from kerascnn.outputs.document import Table


@dataclass
class Options:
    classes: str = "all"        # target classes: all, or numbers and ranges like 0-4,7
    steps: int = 500            # most gradient steps for the batch
    lr: float = 0.01            # step size in pixel units (sign: every pixel moves by exactly lr)
    optimizer: str = "sign"     # sign (iterative FGSM) or adam; sign reaches the goal in half the steps
    confidence: float = 0.99    # an image is done at this probability of its class
    seed: int = 0               # seeds the Gaussian noise the images start from
    clip: bool = True           # keep pixels in [0, 1]


@dataclass
class Result:
    attack: object              # attacks.AttackResult

    def to_dict(self) -> dict:
        out = self.attack.to_dict()
        names = self.attack.class_names
        if names:
            for row in out["results"]:
                row["target_name"], row["predicted_name"] = names[row["target"]], names[row["predicted"]]
        return out


def run(subject, options: Options, progress=None) -> Result:
    from dataclasses import replace


    result = attacks.nontargeted(subject.logits_model, attacks.parse_classes(options.classes, subject.num_classes),
                                 seed=options.seed, confidence=options.confidence, progress=progress,
                                 **attack_settings(options))
    return Result(replace(result, class_names=subject.class_names))


def figures(result: Result) -> dict:
    from kerascnn import plots

    return {"nontargeted.png": plots.attack_images(result.attack)}


def arrays(result: Result) -> dict:
    return {"images.npy": result.attack.images}


def table(result: Result):

    r = result.attack
    return Table(["target", "predicted", "P(pred)", "P(target)", "steps", "success"],
                 attack_table_rows(r, r.class_names), f"Nontargeted: from Gaussian noise to each class "
                 f"(done at P >= {r.confidence:g})", numeric=(2, 3, 4))


def summary(result: Result) -> str:
    r = result.attack
    done = int(r.success.sum())
    text = (f"From Gaussian noise, {done}/{len(r.targets)} classes reached P >= {r.confidence:g} in "
            f"{r.steps_run} step(s) ({r.seconds:.2f} s).")
    if done < len(r.targets):
        return text + f" The others did not within {r.settings['steps']} steps (allow more steps, or a larger lr)."
    return text + " Look at the images: a network can be sure of a class in an image that looks like nothing."
