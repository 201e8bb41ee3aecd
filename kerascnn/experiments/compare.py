"""Compare: with and without batch norm, over several seeds. Does batch norm help this recipe?

`run(Options(...))` trains the assignment's network with and without batch norm for each seed
(through `training.train`, one folder per run under OUT/runs/, so an interrupted study resumes and a
finished run is reused) and aggregates them (`kerascnn.study.seeds`): per run the test accuracy, epoch
times and the first iteration at which validation accuracy reached the threshold; per variant the
curves as mean and min-max band over seeds; and a verdict in plain sentences (`kerascnn.study.verdict`).

It studies a recipe on a task, not a given model, so its `run` takes no Subject.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from kerascnn.errors import BadValue
from kerascnn.outputs import locks, store
from kerascnn.outputs.document import Table
from kerascnn.study import engine
from kerascnn.study.seeds import CompareResult, RunRecord, aggregate
from kerascnn.training import fit as training
from kerascnn.training.config import TrainConfig
from kerascnn.training.precision import resolve_precision

VARIANTS = (("cnn", False), ("cnn_bn", True))


@dataclass
class Options:
    """The study: both variants, `seeds` seeds each, the same recipe (`train`) for all."""
    train: TrainConfig = field(default_factory=TrainConfig)   # the recipe (its seed and out_dir are set per run)
    seeds: int = 3                   # seeds first_seed, first_seed + 1, ...
    first_seed: int = 0
    threshold: float = 0.98          # the validation accuracy whose first crossing is counted
    out_dir: str = "runs/compare"    # runs go into OUT/runs/<cnn|cnn_bn>_seed<S>/
    jobs: int = 1                    # runs at a time, each in its own process with cores // jobs threads
                                     # (1: one after the other in this process; see kerascnn.study.engine)
    address: str | None = None       # a Ray cluster ("auto", "ray://HOST:PORT"); None: this machine
    engine: str = "auto"             # auto (Ray when installed), ray, or processes (kerascnn.study.engine)

    def check(self) -> None:
        if self.seeds < 1:
            raise BadValue("seeds", f"must be at least 1, got {self.seeds}")
        engine.check(self.jobs, self.address, self.engine)
        if not 0 < self.threshold < 1:
            raise BadValue("threshold", f"must be in (0, 1), got {self.threshold}")
        self.train.check()

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def run_dir(self, name: str, seed: int) -> Path:
        return Path(self.out_dir) / "runs" / f"{name}_seed{seed}"

    def train_config(self, batchnorm: bool, seed: int) -> TrainConfig:
        name = "cnn_bn" if batchnorm else "cnn"
        return replace(self.train, batchnorm=batchnorm, seed=seed, out_dir=os.fspath(self.run_dir(name, seed)))

    def to_dict(self) -> dict:
        return asdict(self)

    def pool(self) -> engine.Pool:
        """Where the runs run (kerascnn.study.engine); close it, or use it in a `with`."""
        return engine.Pool(self.jobs, self.address, self.engine)


def _recipe_key(train_config: TrainConfig) -> dict:
    """What a finished run folder must have been trained with to be reused (everything but its place)."""

    key = asdict(train_config)
    key.pop("out_dir")
    key.pop("devices")  # the replicas compute one device's run (kerascnn.training.devices)
    key.pop("fused_batchnorm")  # the same arithmetic either way (kerascnn.model.batchnorm)
    key["precision"] = resolve_precision(train_config.precision)
    return key


def load_finished(train_config: TrainConfig) -> RunRecord | None:
    """The finished run in train_config.out_dir when it was trained with the same recipe, else None."""

    out = Path(train_config.out_dir)
    try:
        recipe = json.loads((out / "recipe.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
        steps = store.read_csv(out / "steps.csv")
        history = store.read_csv(out / "history.csv")
    except (OSError, ValueError):
        return None
    if recipe != json.loads(json.dumps(_recipe_key(train_config))) or not steps or not history:
        return None
    if metrics.get("batchnorm") != train_config.batchnorm or metrics.get("seed") != train_config.seed:
        return None
    name = "cnn_bn" if train_config.batchnorm else "cnn"
    return RunRecord(name, train_config.batchnorm, train_config.seed, steps, history, metrics, os.fspath(out), True)


def train_run(config: TrainConfig, label: str, progress: Callable[[str], None], verbose: int | str = 0,
              data=None, indent: str = "    ") -> RunRecord:
    """Trains one run of the study into config.out_dir (recipe.json written once it has finished)."""
    from kerascnn.training.callbacks import epoch_lines

    name = "cnn_bn" if config.batchnorm else "cnn"
    progress(f"{label}: training {config.epochs} epoch(s) -> {config.out_dir}")
    out = Path(config.out_dir)
    with locks.FolderLock(out):  # makes the run's folder; a run that fails first leaves none
        (out / "recipe.json").unlink(missing_ok=True)  # written again only once this run has finished
        extra = (epoch_lines(progress, config.epochs, indent=indent),) if verbose == 0 else ()
        result = training.train(config, data, verbose=verbose, callbacks=extra,
                                notify=lambda line: progress(f"{label}: {line}"))
        store.write_json(out / "recipe.json", _recipe_key(config))
    record = RunRecord(name, config.batchnorm, config.seed, result.steps, result.history, result.metrics, os.fspath(out))
    progress(f"{label}: test accuracy {record.test_accuracy:.2%}, {sum(record.epoch_seconds):.0f} s")
    return record


def _train_in_worker(payload, notify) -> RunRecord:
    config, label = payload
    return train_run(config, label, notify, indent=f"{label}: ")


def run(options: Options, progress: Callable[[str], None] = lambda line: None, verbose: int | str = 0,
        pool: engine.Pool | None = None) -> CompareResult:
    """Trains (or reuses) both variants for every seed and aggregates them.

    progress: one line per run and, with verbose=0, one per epoch (with jobs > 1 each line starts with
    its run's label). verbose: passed to Keras (1: its progress bar; serial runs only). pool: where the
    runs run (default: options.pool(), closed at the end). Raises training.TrainingInterrupted
    (engine.Interrupted with jobs > 1 or on Ray) on Ctrl-C; the same call resumes.
    """

    options.check()
    if pool is None:
        with options.pool() as own:
            return run(options, progress, verbose, own)
    records: dict[int, RunRecord] = {}
    pending = []
    total = 2 * options.seeds
    for seed in options.seed_list:
        for name, batchnorm in VARIANTS:
            config = options.train_config(batchnorm, seed)
            label = f"run {len(records) + len(pending) + 1}/{total}: {name} seed {seed}"
            record = load_finished(config)
            if record is not None:
                progress(f"{label}: already done in {record.out_dir} (test accuracy {record.test_accuracy:.2%}), reused")
                records[len(records) + len(pending)] = record
            else:
                pending.append((len(records) + len(pending), label, config))
    if pool.parallel and pending:  # even one run: the same threads as its siblings would have had
        # on a cluster a relative folder would mean the worker's own working folder: give it whole
        where = (lambda c: replace(c, out_dir=os.path.abspath(c.out_dir))) if options.address else (lambda c: c)
        done = pool.map([(label, (where(config), label)) for _, label, config in pending], _train_in_worker, progress)
        records.update({index: record for (index, _, _), record in zip(pending, done)})
    else:
        data, data_seed = None, None
        for index, label, config in pending:
            if data_seed != config.seed:  # both variants of a seed share its split
                data, data_seed = config.task.splits(config.val_size, config.seed, config.subset), config.seed
            records[index] = train_run(config, label, progress, verbose, data)
    runs = [records[i] for i in range(total)]
    return aggregate(runs, options.to_dict(), options.threshold)


def figures(result: CompareResult) -> dict:
    from kerascnn import plots

    return {"curves_loss.png": plots.band_curves(result, "loss"),
            "curves_accuracy.png": plots.band_curves(result, "accuracy"),
            "test_accuracy.png": plots.seed_accuracies(result)}


def table(result: CompareResult):

    rows = []
    for row in result.table():
        median = "never" if row["iterations_median"] is None else f"{row['iterations_median']:,.0f}"
        per_seed = ", ".join("never" if i is None else f"{i:,}" for i in row["iterations"])
        std = f"{100 * row['test_accuracy_std']:.2f}" if row["seeds"] > 1 else "-"
        rows.append([row["variant"], row["seeds"], f"{100 * row['test_accuracy_mean']:.2f}%", std,
                     f"{100 * row['test_accuracy_min']:.2f} - {100 * row['test_accuracy_max']:.2f}%",
                     f"{row['epoch_seconds']:.1f} s", f"{median} ({per_seed})"])
    return Table(["variant", "seeds", "test accuracy (mean)", "std (points)", "min - max", "epoch time",
                  f"iterations to {result.threshold:.0%} val (median; per seed)"], rows,
                 "With and without batch norm, the same recipe and seeds", numeric=(1, 2, 3, 4, 5))


def summary(result: CompareResult) -> str:
    return result.verdict.sentence
