"""The whole study as one report: report.html (self-contained: figures embedded as base64 PNG, inline
CSS, no scripts, readable offline) and report.md beside the same PNG files.

`build_report(ReportConfig(...), progress)` is a loop over the experiments (`plan`): each one's `run`
on the subject, then its `summary`, `figures` and `table` become a Section, the same functions the
commands use. Around them: the network's layer table, the training of both models (curves from
their run folders; a `kerascnn compare` folder when given), and on MNIST our numbers beside the
reference reports'. Any model and dataset work; the MNIST defaults reproduce the assignment.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kerascnn import SAVED_MODELS, __version__
from kerascnn.data.tasks import Task
from kerascnn.errors import BadValue, UserError
from kerascnn.experiments import (
    ON_A_MODEL,
    evaluation,
    get,
)
from kerascnn.experiments.reference import network_section, reference_section
from kerascnn.model.domain import InputDomain
from kerascnn.model.subject import Subject
from kerascnn.outputs import folders as outputs
from kerascnn.outputs import store
from kerascnn.outputs.document import Image, Paragraph, Row, Section, Table, render_html, render_markdown
from kerascnn.outputs.paths import shown_path, shown_text
from kerascnn.reporting.plan import HEAVY_OPTIONS, is_heavy, plan
from kerascnn.reporting.training import training_section
from kerascnn.training import fit as training
from kerascnn.training.config import TrainConfig

#: An experiment's table longer than this is left out of the report (the command prints it).
MAX_TABLE_ROWS = 16


@dataclass
class ReportConfig:
    """What the report runs. Experiment options are the commands' own defaults unless `options`
    overrides some fields (tests shrink the attacks: {"nontargeted": {"steps": 3}})."""
    out_dir: str = "runs/report"
    dataset: str = "mnist"
    data_dir: str | None = None
    model: str | None = None          # run folder or .keras file (None: the shipped MNIST cnn)
    bn_model: str | None = None       # a second model to set beside it (None: the shipped cnn_bn on MNIST)
    retrain: bool = False             # train both afresh into OUT/models/ with `train`
    train: TrainConfig = field(default_factory=TrainConfig)   # --retrain's recipe (dataset set from above)
    compare_dir: str | None = None    # a `kerascnn compare` output folder to include
    options: dict = field(default_factory=dict)   # per experiment: {field: value} over its defaults
    force: bool = False               # write into an out_dir kerascnn did not make (its files are kept)
    seed: int = 0
    domain: InputDomain | None = None  # what --model and --bn-model take (None: read off each model)
    sections: tuple | None = None     # the experiments to run (names of ON_A_MODEL; None: all)
    full_paths: bool = False          # name models and data by absolute paths (default: relative, or run names)

    @property
    def task(self) -> Task:
        return Task(self.dataset, self.data_dir)

    def check(self) -> None:
        unknown = [s for s in (self.sections or ()) if s not in ON_A_MODEL]
        if self.sections is not None and (unknown or not self.sections):
            raise BadValue("sections", f"{'unknown ' + repr(unknown[0]) if unknown else 'none given'}: choose from "
                                       f"{', '.join(ON_A_MODEL)} (comma-separated)")

        for name in self.options:
            if name not in ON_A_MODEL:
                raise UserError(f"options: no experiment {name!r} (choose from {', '.join(ON_A_MODEL)})")
        if self.compare_dir and not (Path(self.compare_dir) / "result.json").is_file():
            raise UserError(f"compare folder {self.compare_dir}: no result.json there (run `kerascnn compare` first)")
        self.train.check()


@dataclass
class ReportResult:
    html: Path
    markdown: Path
    figures: list[Path]
    sections: list[str]           # titles, in order
    seconds: dict                 # per section, and "total"
    numbers: dict                 # the results' JSON, per section id


@dataclass
class Model:
    """One model of the report: the subject, its run's files, its test evaluation."""
    name: str
    subject: object
    metrics: dict | None
    steps: list[dict] | None
    test: object = None           # experiments.evaluation.EvalResult




def experiment_section(section_id: str, title: str, module, result, figures) -> Section:
    """One experiment as a section: its summary, its figures (saved as <id>_<name>) and its table."""
    from kerascnn.plots.common import close_figures

    drawn = module.figures(result)
    try:
        # a row of maps (wide) is not set beside a table
        wide = any(fig.get_figwidth() > 2 * fig.get_figheight() for fig in drawn.values())
        images = [figures.add(fig, f"{section_id}_{name}", f"{title}: {name}") for name, fig in drawn.items()]
    finally:  # a failed save (a full disk) leaves none of them open
        close_figures(drawn.values())
    table = module.table(result)
    blocks = [Paragraph(module.summary(result), note=True)]
    if len(table.rows) > MAX_TABLE_ROWS:  # a long table (e.g. 32 filters) reads better in result.json
        return Section(section_id, title, blocks + images + [Paragraph(
            f"({table.caption}: {len(table.rows)} rows, left out here; the command prints them.)")])
    blocks += [Row([images[0], table])] if len(images) == 1 and len(table.rows) <= 12 and not wide else images + [table]
    return Section(section_id, title, blocks)


def _without_full_paths(section: Section) -> Section:
    """The section with every absolute path in its text, captions and table cells shown as
    kerascnn.outputs.paths.shown_path shows it (the experiments' captions name their model's file)."""

    def block(b):
        if isinstance(b, Paragraph):
            return dataclasses.replace(b, text=shown_text(b.text))
        if isinstance(b, Table):
            return dataclasses.replace(b, caption=shown_text(b.caption), header=[shown_text(str(h)) for h in b.header],
                                       rows=[[shown_text(v) if isinstance(v, str) else v for v in row]
                                             for row in b.rows])
        if isinstance(b, Image):
            return dataclasses.replace(b, caption=shown_text(b.caption))
        if isinstance(b, Row):
            return Row([block(item) for item in b.items])
        return b

    return dataclasses.replace(section, blocks=[block(b) for b in section.blocks])


class Figures:
    """Saves each figure as OUT/<name> and keeps its bytes for embedding."""

    def __init__(self, out: Path):
        self.out = out
        self.paths: list[Path] = []

    def add(self, fig, name: str, caption: str, max_width: int | None = None) -> Image:

        path = store.save_figure(fig, self.out / name)
        self.paths.append(path)
        return Image(name, path.read_bytes(), caption, max_width)


# ---------------------------------------------------------------------------- models and training
def _load(name: str, path, task: Task, domain: InputDomain | None = None) -> Model:

    subject = Subject.load(path, task, domain=domain)
    folder = subject.path.parent
    metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else None
    steps = store.read_csv(folder / "steps.csv") if (folder / "steps.csv").is_file() else None
    return Model(name, subject, metrics, steps)


def _models(config: ReportConfig, out: Path, progress) -> list[Model]:

    task = config.task
    mnist = config.dataset == "mnist" and config.data_dir is None
    if config.retrain:
        return _train_models(config, out, progress)
    first = config.model or (SAVED_MODELS / "cnn" if mnist else None)
    if first is None:
        raise UserError(f"no model for {task.name}: pass --model (or --retrain)")
    models = [_load(Path(first).stem if Path(first).suffix == ".keras" else Path(first).name, first, task, config.domain)]
    second = config.bn_model or (SAVED_MODELS / "cnn_bn" if mnist and config.model is None else None)
    if second is not None:
        models.append(_load(Path(second).name if Path(second).is_dir() else Path(second).stem, second, task,
                            config.domain))
    return models


def _train_models(config: ReportConfig, out: Path, progress) -> list[Model]:
    from kerascnn.training.callbacks import epoch_lines

    models = []
    base = dataclasses.replace(config.train, dataset=config.dataset, data_dir=config.data_dir, seed=config.seed)
    data = base.task.splits(base.val_size, base.seed, base.subset)
    for name, batchnorm in (("cnn", False), ("cnn_bn", True)):
        train_config = dataclasses.replace(base, batchnorm=batchnorm, out_dir=os.fspath(out / "models" / name))
        final = Path(config.out_dir) / "models" / name  # `out` is the temporary folder, renamed at the end
        progress(f"  training {name}: {base.epochs} epoch(s), batch {base.batch_size} -> "
                 f"{shown_path(final, config.full_paths)}")
        result = training.train(train_config, data, verbose=0, callbacks=(epoch_lines(progress, base.epochs),),
                                notify=progress)
        subject = Subject(result.model, base.task, final / "model.keras")
        models.append(Model(name, subject, result.metrics, result.steps))
    return models


# ---------------------------------------------------------------------------- the whole study
def build_report(config: ReportConfig, progress: Callable[[str], None] = lambda line: None) -> ReportResult:
    """Runs the study and writes OUT/report.html, OUT/report.md and the PNG figures they show (built in
    a temporary folder and swapped in whole: a killed report leaves the previous one as it was)."""
    import keras


    config.check()
    task = config.task
    protect = [p for p in (config.model, config.bn_model, config.compare_dir) if p]
    with outputs.output_folder(config.out_dir, "report", force=config.force, protect=protect) as out:
        figures = Figures(out)
        seconds: dict[str, float] = {}
        numbers: dict = {}
        start = time.perf_counter()
        progress("[1/3] the models and their training")
        models = _models(config, out, progress)
        subject = models[0].subject
        for m in models:
            m.test = evaluation.run(m.subject, evaluation.Options()).evaluation
            progress(f"  {m.name} ({shown_path(m.subject.path, config.full_paths)}): test accuracy "
                     f"{m.test.accuracy:.2%}")
        sections = [network_section(subject, task), training_section(models, figures, config.compare_dir)]
        steps = [s for s in plan(task, subject) if config.sections is None or s[2] in config.sections]
        keras.utils.set_random_seed(config.seed)
        for number, (section_id, title, name, options) in enumerate(steps, start=1):
            progress(f"[2/3] experiment {number}/{len(steps)}: {title}")
            module = get(name)
            options = dataclasses.replace(options, **config.options.get(name, {}))
            t = time.perf_counter()
            result = module.run(subject, options)
            sections.append(experiment_section(section_id, title, module, result, figures))
            numbers[section_id] = result.to_dict()
            seconds[section_id] = time.perf_counter() - t
        slow = sorted(((s, k) for k, s in seconds.items() if s >= 5 and k != "total"), reverse=True)
        if slow:
            progress("  the longest: " + ", ".join(f"{k} {s:.0f} s" for s, k in slow[:6]))
        progress("[3/3] writing report.html and report.md")
        if task.is_mnist:
            sections.append(reference_section(models, numbers, config.compare_dir))
        seconds["total"] = time.perf_counter() - start
        import tensorflow as tf

        meta = [f"kerascnn {__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
                f"generated {time.strftime('%Y-%m-%d %H:%M')} in {seconds['total']:.0f} s",
                "models: " + "; ".join(f"{m.name} = {shown_path(m.subject.path, config.full_paths)}" for m in models)
                + f"; the experiments use {models[0].name}",
                f"data: {task.name}, {task.input_shape}, {task.num_classes} classes ({task.describe()})",
                f"input domain: {subject.domain.describe()} ({subject.domain.source})"]
        if is_heavy(subject):
            meta.append("a model of real size: fewer images and steps than the commands' defaults "
                        f"({'; '.join(f'{k}: {v}' for k, v in HEAVY_OPTIONS.items())}), the first convolution "
                        "layer's filters maximised, and one occlusion map")
        title = f"kerascnn: {subject.name} on {task.name}, studied end to end"
        if not config.full_paths:  # a report is made to be shared: no absolute path of this machine in it
            meta, sections = [shown_text(line) for line in meta], [_without_full_paths(s) for s in sections]
        store.write_text(out / "report.html", render_html(title, meta, sections))
        store.write_text(out / "report.md", render_markdown(title, meta, sections))
        names = [p.name for p in figures.paths]
    final = Path(config.out_dir)
    return ReportResult(final / "report.html", final / "report.md", [final / n for n in names],
                        [s.title for s in sections], seconds, numbers)
