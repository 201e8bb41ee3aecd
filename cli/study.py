"""Commands that run whole studies: compare, report."""
from __future__ import annotations

import time

import click

from cli.common import data_dir_option, guarded


@click.command()
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per variant, with seeds --first-seed, --first-seed + 1, ...")
@click.option("--first-seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr-schedule", type=click.Choice(["cosine", "constant"]), default="cosine", show_default=True,
              help="As for `kerascnn train` (constant: the assignment's fixed Adam rate).")
@click.option("--val-size", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Training images held out for validation.")
@click.option("--val-every", type=click.IntRange(min=1), default=512, show_default=True,
              help="Iterations between validation points: the resolution of 'iterations to reach 98%'.")
@click.option("--subset", type=click.IntRange(min=2), default=None,
              help="Use only the first N training images (quick trials).")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp32"]), default="auto", show_default=True)
@data_dir_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="compare", show_default=True,
              help="Output folder; the runs go into OUT/runs/<cnn|cnn_bn>_seed<S>/.")
@click.option("--verbose", is_flag=True, help="Keras' progress bar for every epoch instead of one line each.")
@guarded
def compare(seeds, first_seed, epochs, batch_size, lr_schedule, val_size, val_every, subset, precision, data_dir,
            out_dir, verbose):
    """Does batch norm help? Train with and without it for several seeds and compare.

    Trains both variants with the same recipe for each seed, then draws training and validation
    loss and accuracy against iterations (mean over seeds, band from min to max) and tabulates test
    accuracy (mean and standard deviation), epoch time and the first iteration at which validation
    accuracy reached 98%. It ends with a sentence on whether batch norm helped: a difference of
    mean test accuracy smaller than the spread between seeds (or two standard errors) is reported
    as no clear difference; so are speeds whose per-seed ranges overlap.

    (The two reference reports disagree: one found batch norm faster and +0.13 points, the other
    no help at all. Each trained once.)

    Every run has its own folder; run the same command again after an interruption and finished
    runs are reused, an unfinished one resumes. Writes OUT/compare.json, curves_loss.png,
    curves_accuracy.png and test_accuracy.png.

    \b
    Example:  kerascnn compare --seeds 3 --epochs 5
    """
    from kerascnn import compare as study, store, training

    config = study.CompareConfig(seeds=seeds, first_seed=first_seed, epochs=epochs, batch_size=batch_size,
                                 lr_schedule=lr_schedule, val_size=val_size, val_every=val_every, subset=subset,
                                 precision=precision, data_dir=data_dir, out_dir=out_dir)
    config.check()
    store.ensure_dir(out_dir)
    click.echo(f"Comparing without and with batch norm: {seeds} seed(s) x 2 = {2 * seeds} runs of {epochs} "
               f"epoch(s), batch {batch_size}, lr schedule {lr_schedule}, "
               f"{training.resolve_precision(precision)} -> {out_dir}/")
    started = time.perf_counter()
    result = study.compare(config, progress=click.echo, verbose=1 if verbose else 0)
    written = study.save(result, out_dir)
    click.echo("")
    click.echo(study.format_table(result))
    click.echo("")
    click.echo(result.verdict.sentence)
    reused = sum(run.reused for run in result.runs)
    click.echo(f"\n{2 * seeds} runs{f' ({reused} reused)' if reused else ''} in {time.perf_counter() - started:.0f} s; "
               f"wrote {out_dir}/: "
               + " ".join(p.name for p in written) + " (runs in runs/)")


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="report", show_default=True,
              help="Folder for report.html, report.md and the PNG figures.")
@click.option("--retrain", is_flag=True,
              help="Train both models afresh (default recipe, into OUT/models/) instead of using the "
                   "pretrained saved_models/cnn and saved_models/cnn_bn.")
@click.option("--model", "model_dir", type=click.Path(), default=None,
              help="The model without batch norm: a run folder (model.keras with its steps.csv and "
                   "metrics.json) or a .keras file. Default: saved_models/cnn.")
@click.option("--bn-model", "bn_model_dir", type=click.Path(), default=None,
              help="The model with batch norm, likewise. Default: saved_models/cnn_bn.")
@click.option("--compare", "compare_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="A folder written by `kerascnn compare`: its table, verdict and curves join the report.")
@data_dir_option
@guarded
def report(out_dir, retrain, model_dir, bn_model_dir, compare_dir, data_dir):
    """Run the whole study and write one self-contained report.html (and report.md).

    In order: the network and its parameters; training curves, test accuracy and predictions of
    both models; conv1 filters and conv2 slices; activation maps of a test digit; occlusion of a 7
    and a 9 with their tables; the nontargeted, targeted and noise attacks and the universal noise;
    and our numbers beside the reference reports'. Figures are PNG files in OUT/, embedded in
    report.html (readable offline, no scripts) and linked from report.md.

    With the pretrained models it takes about 20 seconds on two CPU cores (the attacks most of it).

    \b
    Example:  kerascnn report --out report/
    """
    from kerascnn import report as report_lib, store

    config = report_lib.ReportConfig(out_dir=out_dir, retrain=retrain, data_dir=data_dir, compare_dir=compare_dir,
                                     **({"model_dir": model_dir} if model_dir else {}),
                                     **({"bn_model_dir": bn_model_dir} if bn_model_dir else {}))
    config.check()
    store.ensure_dir(out_dir)
    started = time.perf_counter()
    result = report_lib.build_report(config, progress=click.echo)
    click.echo(f"report written in {time.perf_counter() - started:.0f} s: {result.html} ({len(result.figures)} "
               f"figures embedded), {result.markdown} with its PNG files beside it")


COMMANDS = [compare, report]
