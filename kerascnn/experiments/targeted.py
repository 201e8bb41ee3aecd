"""Targeted attack: images that look like a real test image (the guide) yet are predicted as each
class: minimise cross_entropy(model(x), c) + beta * mse(x, guide) from Gaussian noise."""
from __future__ import annotations

from dataclasses import dataclass

from kerascnn import attacks
from kerascnn.experiments.common import attack_settings, attack_table_rows, class_name, resolve_class
from kerascnn.outputs.document import Table

#: The assignment's guide: the first test 7.
ASSIGNMENT_GUIDE = 7


@dataclass
class Options:
    guide: str | int | None = None   # the guide: the first test image of this class (None: 7, or the last class)
    index: int | None = None         # or test image number I as the guide
    classes: str = "all"             # the classes to make it look like
    beta: float = 100.0              # weight of mse(x, guide): larger looks more like it, succeeds less often
    steps: int = 300                 # runs all of them (the distance keeps improving after success)
    lr: float = 0.05
    optimizer: str = "adam"          # Adam converges on the trade-off where sign steps oscillate
    seed: int = 0                    # seeds the Gaussian noise the images start from
    clip: bool = True


@dataclass
class Result:
    attack: object                   # attacks.AttackResult with its guide
    guide_index: int
    guide_label: int

    def to_dict(self) -> dict:
        names = self.attack.class_names
        out = self.attack.to_dict() | {"guide_index": self.guide_index, "guide_label": self.guide_label,
                                       "guide_name": class_name(names, self.guide_label)}
        for row in out["results"]:
            row["target_name"], row["predicted_name"] = class_name(names, row["target"]), class_name(names, row["predicted"])
        return out


def run(subject, options: Options, progress=None) -> Result:
    from dataclasses import replace


    task = subject.task
    if options.index is not None:
        i = task.check_index(options.index)
    else:
        i = task.first_of_class(resolve_class(task, options.guide, ASSIGNMENT_GUIDE, "guide",
                                                  with_image=True))
    images, labels = task.test()
    result = attacks.targeted(subject.logits_model, images[i], attacks.parse_classes(options.classes, subject.num_classes),
                              beta=options.beta, seed=options.seed, progress=progress, **attack_settings(options))
    return Result(replace(result, class_names=subject.class_names), i, int(labels[i]))


def figures(result: Result) -> dict:
    from kerascnn import plots

    return {"targeted.png": plots.attack_images(result.attack, ncols=6)}


def arrays(result: Result) -> dict:
    return {"images.npy": result.attack.images}


def table(result: Result):

    r = result.attack
    return Table(["class", "predicted", "P(pred)", "P(class)", "steps", "mse", "success"],
                 attack_table_rows(r, r.class_names),
                 f"Targeted: look like test image {result.guide_index} ({class_name(r.class_names, result.guide_label)}), "
                 f"beta {r.settings['beta']:g}; mse is the mean squared difference to it", numeric=(2, 3, 4, 5))


def summary(result: Result) -> str:
    r = result.attack
    return (f"Images close to test image {result.guide_index} ({class_name(r.class_names, result.guide_label)}) "
            f"yet predicted as each class: {int(r.success.sum())}/{len(r.targets)} succeed at a mean squared "
            f"difference of {r.mse.mean():.4f} (beta {r.settings['beta']:g}, {r.steps_run} steps, {r.seconds:.1f} s).")
