"""Studies of many runs: `kc.compare` (batch norm or not, over seeds). Each run trains into its own
folder under `out`, so that an interrupted study resumes and finished runs are reused; the study's
folder is written in place, as `kerascnn compare` writes it."""
from __future__ import annotations

import contextlib
from pathlib import Path

from kerascnn.api.calls import build_options
from kerascnn.api.results import Result
from kerascnn.experiments import compare as _compare
from kerascnn.training.config import TrainConfig

__all__ = ["compare", "run_compare", "study_folder"]


@contextlib.contextmanager
def study_folder(out_dir, command: str, pool, force: bool = False, protect=()):
    """Holds a study's folder (locked) for the runs of `pool` (a kerascnn.study.engine.Pool); yields the
    engine's description. Refused before any work: a folder that is neither ours, empty nor
    missing (unless `force`; a file of the user's is never replaced), one of the inputs in `protect`.
    The engine is resolved before the folder is marked, so that a cluster that cannot be reached leaves
    no folder; a study stopped before its result.json keeps the mark, and its rerun is accepted."""
    from kerascnn.outputs import locks
    from kerascnn.outputs.folders import MARKER, check_output_folder
    from kerascnn.training import runs

    runs.check_training_folder(out_dir, force=force)
    check_output_folder(out_dir, command, force=True, protect=protect)
    with locks.FolderLock(out_dir):
        where = pool.description
        if not (Path(out_dir) / MARKER).exists():
            runs.mark_training_folder(out_dir, command)
        yield where


def compare(data=None, *, out="runs/compare", seeds: int = 3, first_seed: int = 0, jobs: int = 1, address=None,
            engine: str = "auto", force: bool = False, notify=None, **train) -> Result:
    """Does batch norm help? Trains the assignment's CNN with and without it for `seeds` seeds, and
    writes the study into `out` (each run in out/runs/, reused when the same call is made again).

    Arguments:
        data: None (MNIST), a dataset name or a folder.
        seeds, first_seed; jobs (runs at a time), address (a Ray cluster), engine ("auto", "ray", "processes").
        train: the recipe's fields (epochs, batch_size, lr, lr_schedule, val_size, val_every, subset, precision).
        notify: a function given each line of news (None: silent).

    Returns:
        Result with curves_loss.png, curves_accuracy.png and test_accuracy.png; its verdict in `.summary()`.

    Example:
        >>> kc.compare(seeds=2, epochs=1, subset=2000, out="runs/compare_quick")
    """
    from kerascnn.api.inputs import as_task
    from kerascnn.cpu import choose_kernels

    choose_kernels()
    fields = {}
    if data is not None:
        task = as_task(data)
        fields = {"dataset": task.dataset, "data_dir": task.data_dir}
    recipe = build_options(TrainConfig, train, "compare", exclude=("dataset", "data_dir", "out_dir", "seed"),
                           **fields)
    options = _compare.Options(train=recipe, seeds=seeds, first_seed=first_seed, out_dir=str(out), jobs=jobs,
                               address=address, engine=engine)
    return run_compare(options, force=force, notify=notify)


def run_compare(options: _compare.Options, *, force: bool = False, notify=None, starting=None,
                verbose: int = 0) -> Result:
    """The study of `options` in its folder (held and locked; finished runs reused), its figures and
    result.json written beside its runs. `starting(engine description)` is called once the folder is
    held, before the first run."""
    options.check()
    with options.pool() as pool, study_folder(str(options.out_dir), "compare", pool, force=force) as where:
        if starting is not None:
            starting(where)
        raw = _compare.run(options, progress=notify or (lambda line: None), verbose=verbose, pool=pool)
        result = Result(_compare, raw, "compare")
        result.save(options.out_dir, force=True)
    return result
