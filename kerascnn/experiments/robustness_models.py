"""Robustness of several models, as a study: `kerascnn robustness --model A --model B ...`.

Its runs are (model x column): each model's FGSM, PGD and ensemble (AutoAttack, or the components
given) columns, each a `robustness.run` with that column alone. The check at a huge eps goes with the
column that would run it in one call: PGD, else the ensemble. The runs go where the study's engine
puts them (kerascnn.study.engine: one after another in this process, in local worker processes, or
on Ray); each is saved in OUT/runs/<k>_<model>_<column>/ beside the key it was made with, so that an
interrupted study resumes and a finished run is reused while its model file and options are the same.

A model's columns are merged back into the one robustness.Result of all of them: every attack seeds
its own random starts from options.seed (tests/test_robustness_models.py). Like compare, its run
takes the Options and no Subject.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from kerascnn.data.tasks import Task
from kerascnn.errors import BadValue, UserError
from kerascnn.experiments import robustness
from kerascnn.model.domain import InputDomain
from kerascnn.model.subject import Subject, resolve_model_path
from kerascnn.outputs import locks, store
from kerascnn.outputs.document import Table
from kerascnn.study import engine


@dataclass
class Options:
    """The study: the same attacks (`attack`, robustness.Options) on every model of `models`."""
    models: tuple = ()               # .keras files or run folders (two or more, or one with --jobs)
    attack: robustness.Options = field(default_factory=robustness.Options)
    dataset: str = "mnist"           # the task every model is measured on
    data_dir: str | None = None
    domain: InputDomain | None = None  # given once for all the models; None: read off each
    out_dir: str = "runs/robustness_models"  # runs go into OUT/runs/<k>_<model>_<column>/
    jobs: int = 1                    # runs at a time (kerascnn.study.engine)
    address: str | None = None       # a Ray cluster ("auto", "ray://HOST:PORT"); None: this machine
    engine: str = "auto"             # auto (Ray when installed), ray, or processes

    def check(self) -> None:
        if not self.models:
            raise BadValue("models", "give at least one model")
        files = [os.path.realpath(resolve_model_path(m)) for m in self.models]
        twice = next((m for m, f in zip(self.models, files) if files.count(f) > 1), None)
        if twice is not None:
            raise BadValue("models", f"{twice} is given twice")
        self.attack.resolved()
        engine.check(self.jobs, self.address, self.engine)

    def pool(self) -> engine.Pool:
        return engine.Pool(self.jobs, self.address, self.engine)


@dataclass(frozen=True)
class Run:
    """One model's one column: what `attack_run` needs, all of it picklable."""
    label: str                       # "run 3/6: cnn_bn, PGD-40"
    model: str                       # the model's path as given
    name: str                        # the model's name in tables (unique in the study)
    column: str                      # robustness column key: fgsm, pgd, autoattack, apgd-ce+apgd-t ...
    options: robustness.Options      # resolved, with this column's attacks only
    dataset: str
    data_dir: str | None
    domain: InputDomain | None
    folder: str                      # OUT/runs/<k>_<model>_<column>
    first: bool = False              # the model's first column (its input domain is told once)

    def key(self) -> dict:
        """What a finished run's folder must have been made from to be reused."""
        model = resolve_model_path(self.model).resolve()
        stat = model.stat()
        return json.loads(json.dumps({
            "model": str(model), "model_bytes": stat.st_size, "model_mtime_ns": stat.st_mtime_ns,
            "dataset": self.dataset, "data_dir": self.data_dir and os.path.abspath(self.data_dir),
            "domain": None if self.domain is None else asdict(self.domain), "options": asdict(self.options)}))


@dataclass
class Part:
    """A finished run: its robustness.Result and the model's input domain as result.json records it."""
    result: robustness.Result
    domain: dict
    reused: bool = False


@dataclass
class Result:
    results: list                    # robustness.Result per model, in the order given
    domains: dict                    # model name -> its input domain (Subject.domain_dict)
    options: Options
    reused: int = 0                  # runs taken from OUT/runs/ as they were

    def to_dict(self) -> dict:
        o = self.results[0].options
        return {"models": [r.model for r in self.results], "norm": o.norm, "eps": list(o.eps),
                "count": len(self.results[0].labels), "upper_bounds": True,
                "robustness": {r.model: r.to_dict() for r in self.results},
                "input_domain": self.domains,
                "runs": {"total": len(self.results) * len(o.columns), "reused": self.reused,
                         "folder": os.path.join(self.options.out_dir, "runs")}}


# ---------------------------------------------------------------------------- the plan
def model_names(models) -> list[str]:
    """Each model's name in tables (experiments.common.model_label without loading it): its run
    folder's name or its file's stem; a name taken twice gets " (2)", " (3)"..."""
    names = []
    for m in models:
        path = resolve_model_path(m)
        base = path.parent.name if path.name == "model.keras" else path.stem
        names.append(base if base not in names else f"{base} ({sum(n.split(' (')[0] == base for n in names) + 1})")
    return names


def column_attacks(column: str, options: robustness.Options) -> tuple:
    """What robustness.Options.attacks must be for `column` alone."""
    return (column,) if column in ("fgsm", "pgd", "autoattack") else options.components


def plan(options: Options) -> list[Run]:
    attack = options.attack.resolved()
    # robustness.run checks at a huge eps with PGD when it runs, else with APGD-CE (the ensemble's)
    checking = "pgd" if "pgd" in attack.columns else attack.ensemble
    runs = []
    total = len(options.models) * len(attack.columns)
    for k, (model, name) in enumerate(zip(options.models, model_names(options.models)), start=1):
        for column in attack.columns:
            label = f"run {len(runs) + 1}/{total}: {name}, {robustness.attack_label(column, attack)}"
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{k}_{name}_{column}")
            runs.append(Run(label, os.fspath(model), name, column,
                            replace(attack, attacks=column_attacks(column, attack),
                                    sanity=attack.sanity if column == checking else 0),
                            options.dataset, options.data_dir, options.domain,
                            os.path.join(options.out_dir, "runs", slug), first=column == attack.columns[0]))
    return runs


# ---------------------------------------------------------------------------- one run
def load_finished(run: Run) -> Part | None:
    """The run's saved Part when its folder was made from the same key, else None."""
    folder = Path(run.folder)
    try:
        if json.loads((folder / "key.json").read_text()) != run.key():
            return None
        part = pickle.loads((folder / "result.pkl").read_bytes())
    except (OSError, ValueError, pickle.UnpicklingError, EOFError, AttributeError, TypeError):
        return None
    return replace(part, reused=True) if isinstance(part, Part) else None


def attack(run: Run, subject: Subject, notify: Callable[[str], None]) -> Part:
    """Runs `run` on `subject` (its model, loaded) and saves it in run.folder (key.json last)."""
    o = run.options
    if run.first and not subject.domain.identity:
        notify(f"{run.label}: {subject.domain.notice(subject.name)}")
    notify(f"{run.label}: {len(o.eps)} eps x {o.count} images -> {run.folder}")
    key = run.key()
    begin = time.perf_counter()
    with locks.FolderLock(run.folder):
        folder = Path(run.folder)
        (folder / "key.json").unlink(missing_ok=True)  # written again only once this run has finished
        result = robustness.run(subject, o)
        result.model = run.name
        part = Part(result, subject.domain_dict())
        store.write_bytes(folder / "result.pkl", pickle.dumps(part))
        store.write_json(folder / "key.json", key)
    accuracy = ", ".join(f"{v:.1%} at {e:g}" for e, v in zip(o.eps, result.accuracy(run.column)) if e > 0)
    notify(f"{run.label}: {accuracy} ({time.perf_counter() - begin:.0f} s)")
    return part


def attack_in_worker(run: Run, notify) -> Part:
    """A worker's run (kerascnn.study.engine): loads its own model, then `attack`."""
    subject = Subject.load(run.model, Task(run.dataset, run.data_dir), domain=run.domain)
    return attack(run, subject, notify)


def merge(parts: list, options: robustness.Options) -> robustness.Result:
    """One model's columns (Parts in column order) as the one robustness.Result of all of them."""
    options = options.resolved()
    first = parts[0].result
    merged = dict(correct={}, examples={}, example_predictions={}, seconds={}, gradient_steps={})
    per_restart, after, component_seconds = None, {}, {}
    sanity = (None, None, "pgd" if "pgd" in options.columns else "apgd-ce")
    for column, part in zip(options.columns, parts):
        r = part.result
        if not np.array_equal(r.labels, first.labels):
            raise UserError(f"{r.model}: its saved runs were made on other test images; remove {column}'s run folder")
        for name, values in merged.items():
            values.update(getattr(r, name))
        if column == "pgd":
            per_restart = r.per_restart
        if column == options.ensemble:
            after, component_seconds = r.after, r.component_seconds
        if r.sanity_eps is not None:
            sanity = (r.sanity_eps, r.sanity_accuracy, r.sanity_attack)
    return replace(first, options=options, per_restart=per_restart, sanity_eps=sanity[0], sanity_accuracy=sanity[1],
                   sanity_attack=sanity[2], after=after, component_seconds=component_seconds, **merged)


# ---------------------------------------------------------------------------- the study
def run(options: Options, progress: Callable[[str], None] = lambda line: None,
        pool: engine.Pool | None = None) -> Result:
    """Attacks (or reuses) every run of the plan and merges them per model. progress: a line per run
    as it starts and ends (with jobs > 1 they interleave, each starting with its label). pool: where the
    runs run (default: options.pool(), closed at the end). Ctrl-C raises engine.Interrupted (exit 130);
    the same call reuses the finished runs."""
    options.check()
    if pool is None:
        with options.pool() as own:
            return run(options, progress, own)
    runs = plan(options)
    parts: dict[int, Part] = {}
    for i, r in enumerate(runs):
        part = load_finished(r)
        if part is not None:
            progress(f"{r.label}: already done in {r.folder}, reused")
            parts[i] = part
    pending = [i for i in range(len(runs)) if i not in parts]
    if pool.parallel and pending:
        # on a cluster a relative folder would mean the worker's own working folder: give it whole
        whole = (lambda r: replace(r, folder=os.path.abspath(r.folder), model=os.path.abspath(r.model),
                                   data_dir=r.data_dir and os.path.abspath(r.data_dir))) if options.address else (lambda r: r)
        done = pool.map([(runs[i].label, whole(runs[i])) for i in pending], attack_in_worker, progress)
        parts.update(zip(pending, done))
    else:
        subjects: dict[str, Subject] = {}
        try:
            for i in pending:
                r = runs[i]
                if r.model not in subjects:  # each model loaded once
                    subjects = {r.model: Subject.load(r.model, Task(r.dataset, r.data_dir), domain=r.domain)}
                parts[i] = attack(r, subjects[r.model], progress)
        except KeyboardInterrupt:
            raise engine.Interrupted() from None  # the finished runs are saved: say that the same call goes on
    attack_options = options.attack.resolved()
    per_model = len(attack_options.columns)
    results, domains = [], {}
    for m in range(len(options.models)):
        mine = [parts[m * per_model + c] for c in range(per_model)]
        results.append(merge(mine, attack_options))
        domains[results[-1].model] = mine[0].domain
    return Result(results, domains, options, reused=sum(p.reused for p in parts.values()))


# ---------------------------------------------------------------------------- what it shows
def figures(result: Result) -> dict:
    from kerascnn.plots import robustness as plots

    first = result.results[0]
    lines = [c for r in result.results for c in robustness.curves(r)]
    out = {"robustness.png": plots.robustness_curves(
        lines, f"Accuracy under attack on {len(first.labels)} test images ({first.options.norm})", first.options.norm)}
    for k, r in enumerate(result.results, start=1):
        examples = robustness.examples_figure(r)
        if examples is not None:
            out[f"examples_{k}_{re.sub(r'[^A-Za-z0-9_.-]+', '-', r.model)}.png"] = examples
    return out


def table(result: Result) -> Table:
    o = result.results[0].options
    labels = [robustness.attack_label(c, o) for c in o.columns]
    rows = []
    for r in result.results:
        failed = [name for name, ok in r.checks().items() if not ok]
        for i, e in enumerate(o.eps):
            first = i == 0
            rows.append([r.model if first else "", f"{e:g}"] + [f"{r.accuracy(c)[i]:.1%}" for c in o.columns]
                        + [("passed" if not failed else "FAILED: " + ", ".join(failed)) if first else ""])
    return Table(["model", "eps"] + labels + ["checks"], rows,
                 f"Accuracy under {o.norm} attacks on the first {len(result.results[0].labels)} test images, per model "
                 f"(untargeted; every number an upper bound; checks: the gradient-masking checks of `kerascnn "
                 f"robustness`)", numeric=tuple(range(1, len(labels) + 2)))


def summary(result: Result) -> str:
    o = result.results[0].options
    strongest = o.columns[-1]  # the ensemble when there is one, else PGD, else FGSM
    top = max(e for e in o.eps)
    words = robustness.attack_label(strongest, o)
    parts = [f"{r.model} {r.accuracy(strongest)[-1]:.1%} (clean {r.clean_accuracy:.1%})" for r in result.results]
    best = max(result.results, key=lambda r: r.accuracy(strongest)[-1])
    failed = [r.model for r in result.results if not all(r.checks().values())]
    text = (f"Under {words} at eps {top:g} ({o.norm}, {len(best.labels)} test images): {'; '.join(parts)}. "
            f"The most robust there: {best.model}.")
    if failed:
        text += (f" Gradient-masking checks FAILED for {', '.join(failed)}: treat those numbers as upper bounds "
                 f"(`kerascnn robustness --model M` alone says which and why).")
    return text
