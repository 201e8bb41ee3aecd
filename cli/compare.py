"""`kerascnn compare`: with and without batch norm over seeds (kerascnn.experiments.compare)."""
from __future__ import annotations

import time

import click

from cli.common import guarded, quiet_tensorflow
from cli.study_options import engine_options
from cli.train import recipe_options
from kerascnn.experiments.compare import Options
from kerascnn.training import fit as training
from kerascnn.training.config import TrainConfig


@click.command()
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per variant, with seeds --first-seed, --first-seed + 1, ...")
@click.option("--first-seed", type=int, default=0, show_default=True)
@recipe_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/compare", show_default=True,
              help="Output folder; the runs go into OUT/runs/<cnn|cnn_bn>_seed<S>/.")
@click.option("--force", is_flag=True,
              help="Write into an --out folder that kerascnn did not make (its files are kept).")
@click.option("--verbose", is_flag=True, help="Keras' progress bar for every epoch instead of one line each "
                                             "(not with --jobs above 1).")
@engine_options
@guarded
def compare(seeds, first_seed, epochs, batch_size, lr, lr_schedule, val_size, val_every, subset, precision, dataset,
            data_dir, out_dir, force, verbose, jobs, address, engine):
    """Does batch norm help? Train with and without it for several seeds and compare.

    Trains both variants with the same recipe for each seed, then draws training and validation
    loss and accuracy against iterations (mean over seeds, band from min to max) and tabulates test
    accuracy (mean and standard deviation), epoch time and the first iteration at which validation
    accuracy reached 98%. It ends with a sentence on whether batch norm helped: a difference of
    mean test accuracy smaller than the spread between seeds (or two standard errors) is reported
    as no clear difference; so are speeds whose per-seed ranges overlap.

    Time: each run is a whole `kerascnn train`; with the defaults (3 seeds x 2 variants of 5 MNIST
    epochs) about 7 minutes on two CPU cores (416 s measured on an AMD EPYC). One line per run and per
    epoch shows the progress.

    Every run has its own folder; run the same command again after an interruption and finished
    runs are reused, an unfinished one resumes. Writes OUT/result.json, curves_loss.png,
    curves_accuracy.png and test_accuracy.png.

    --jobs N trains N runs at once (lines start with the run's label): as Ray tasks when Ray is
    installed (pip install -e ".[cluster]"), else in N worker processes. --address auto runs them on
    a Ray cluster (`ray start --head` on one machine, `ray start --address HEAD:6379` on the others,
    --out on a disk they share). Without Ray: run `--first-seed K --seeds 1` on each machine with the
    same --out on a shared disk (or copy OUT/runs/ back), then the whole command once more: it
    reuses every finished run.

    \b
    Example:  kerascnn compare --seeds 3 --epochs 5
    """

    train = TrainConfig(dataset=dataset, data_dir=data_dir, epochs=epochs, batch_size=batch_size, lr=lr,
                        lr_schedule=lr_schedule, val_size=val_size, val_every=val_every, subset=subset,
                        precision=precision)
    if verbose and (jobs > 1 or address):
        raise click.UsageError("--verbose draws Keras' bar in this process: use it without --jobs and --address")
    options = Options(train=train, seeds=seeds, first_seed=first_seed, out_dir=out_dir, jobs=jobs, address=address,
                      engine=engine)
    options.check()
    quiet_tensorflow()
    from kerascnn.api.studies import run_compare

    def starting(where: str) -> None:
        click.echo(f"Comparing without and with batch norm on {train.task.name}: {seeds} seed(s) x 2 = {2 * seeds} runs "
                   f"of {epochs} epoch(s), batch {batch_size}, lr schedule {lr_schedule}, "
                   f"{training.resolve_precision(precision)}, {where} -> {out_dir}/")

    started = time.perf_counter()
    result = run_compare(options, force=force, notify=click.echo, starting=starting, verbose=1 if verbose else 0)
    click.echo("")
    click.echo(result.table())
    click.echo(f"wrote {out_dir}/: {' '.join(result.files)}")
    reused = sum(run.reused for run in result.runs)
    click.echo(f"{2 * seeds} runs{f' ({reused} reused)' if reused else ''} in {time.perf_counter() - started:.0f} s "
               f"(runs in {out_dir}/runs/)")


COMMANDS = [compare]
