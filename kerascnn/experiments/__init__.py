"""Experiments: one module each, every one with the same parts, driven alike by the CLI and the report.

    Options                  a dataclass: the ONE home of the experiment's defaults (the CLI reads
                             its option defaults from it; the report builds it from literals)
    run(subject, options, progress=None) -> Result
                             arrays and numbers; `result.to_dict()` is its JSON (result.json)
    figures(result) -> {file name: matplotlib Figure}
    table(result) -> document.Table      what the command prints and the report shows
    summary(result) -> str               one paragraph in words
    arrays(result) -> {file name: array} (optional) the arrays worth keeping as .npy

`compare` and `robustness_models` are the exceptions that prove the rule: studies of many runs, whose
run takes the Options (a TrainConfig; the models' paths) and no Subject.
"""
from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Experiment(Protocol):
    """The contract every experiment module keeps (the contract test checks each against it)."""
    Options: type

    def run(self, subject: Any, options: Any, progress: Any = None) -> Any: ...

    def figures(self, result: Any) -> dict: ...

    def table(self, result: Any) -> Any: ...

    def summary(self, result: Any) -> str: ...

#: The experiments that study one model, in the report's order.
ON_A_MODEL = ("evaluation", "filters", "maximize", "activations", "occlusion", "concepts", "explain",
              "faithfulness", "explanation_metrics",
              "nontargeted", "targeted", "noise", "explain_attack", "robustness_study", "corruptions",
              "certify_study")


def get(name: str) -> Experiment:
    """The experiment module `name` (imported on first use: no work at import time)."""
    if name not in ON_A_MODEL + ("compare", "robustness_models"):
        raise KeyError(f"no experiment {name!r}")
    return importlib.import_module(f"kerascnn.experiments.{name}")
