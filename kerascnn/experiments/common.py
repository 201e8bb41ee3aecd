"""What the experiments share: class naming, a default class that exists in any task, and the
attack settings every attack has (one home for their defaults is each attack's Options)."""
from __future__ import annotations


def class_name(names, k: int) -> str:
    return names[int(k)] if names else str(int(k))


def default_class(task, preferred: int, *, with_image: bool = False) -> int:
    """The assignment's class (`preferred`) when the task has it, else its last class. with_image: a
    class whose first test image is wanted, so only the classes with test images count (else the last
    of those): a folder's test split may lack some classes."""
    k = preferred if preferred < task.num_classes else task.num_classes - 1
    if not with_image:
        return k
    present = task.classes_in_test()
    return k if k in present or not present else present[-1]


def resolve_class(task, spec, preferred: int, param: str, *, with_image: bool = False) -> int:
    """A class given by name or number (None: `default_class`) -> its index, checked."""
    return default_class(task, preferred, with_image=with_image) if spec is None else task.class_index(spec, param)


def attack_settings(options) -> dict:
    """The arguments every gradient attack takes, from an attack's Options."""
    return {"steps": options.steps, "lr": options.lr, "clip": options.clip, "optimizer": options.optimizer}


def attack_table_rows(result, names) -> list[list]:
    """Rows for the nontargeted/targeted tables: target, predicted, P(pred), P(target), steps, success."""
    rows = []
    mse = result.mse
    for i, t in enumerate(result.targets):
        row = [class_name(names, t), class_name(names, result.predicted[i]), f"{result.probability[i]:.4f}",
               f"{result.target_probability[i]:.4f}", int(result.steps_used[i]),
               "yes" if result.success[i] else "NO"]
        if mse is not None:
            row.insert(5, f"{mse[i]:.4f}")
        rows.append(row)
    return rows


def model_label(subject) -> str:
    """A model's name in tables and legends: its run folder (saved_models/cnn -> cnn), else its file's
    name (robust.keras -> robust), else the Keras model's own name."""
    path = subject.path
    return path.stem if path is not None and path.name != "model.keras" else subject.name
