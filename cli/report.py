"""`kerascnn report`: the whole study as one self-contained page (kerascnn.reporting.build)."""
from __future__ import annotations

import time

import click

from cli.common import guarded, quiet_tensorflow, task_options
from cli.domain_options import domain_options
from cli.lists import CommaList
from kerascnn.experiments import ON_A_MODEL
from kerascnn.reporting.build import ReportConfig, build_report


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/report", show_default=True,
              help="Folder for report.html, report.md and the PNG figures (replaced whole when it is an earlier "
                   "report; a folder kerascnn did not make is refused).")
@click.option("--force", is_flag=True,
              help="Write into an --out folder that kerascnn did not make (its files are kept).")
@task_options
@click.option("--model", type=click.Path(exists=True), default=None,
              help="The model to study: a run folder (model.keras with its steps.csv and metrics.json) or a .keras "
                   "file. Default: the pretrained saved_models/cnn (MNIST).")
@click.option("--bn-model", type=click.Path(exists=True), default=None,
              help="A second model set beside it in the training section. Default on MNIST: saved_models/cnn_bn.")
@click.option("--retrain", is_flag=True,
              help="Train cnn and cnn_bn afresh (the default recipe, into OUT/models/) instead of loading models.")
@click.option("--compare", "compare_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="A folder written by `kerascnn compare`: its table, verdict and curves join the report.")
@click.option("--sections", default=None, type=CommaList(lambda items: tuple(dict.fromkeys(items)), "A,B,..."),
              help=f"Only these experiments (comma-separated): {', '.join(ON_A_MODEL)}.")
@click.option("--full-paths", is_flag=True,
              help="Name the models and data by absolute paths (default: relative to the working folder, or by "
                   "run folder and file name, so that the report can be shared).")
@domain_options
@guarded
def report(out_dir, force, dataset, data_dir, model, bn_model, retrain, compare_dir, sections, full_paths, domain):
    """Run the whole study and write one self-contained report.html (and report.md).

    In order: the network and its parameters; training curves and test accuracy of the models; then
    every experiment with the commands' own defaults (predictions, filters, activation maps,
    occlusion of two test images with their maps, explanations, the three attacks and the universal
    noise), then robustness, common corruptions and certified radii, cnn beside cnn_bn and cnn_pgd; and
    on MNIST our numbers beside the reference reports'. Figures are PNG files in OUT/, embedded in
    report.html (readable offline, no scripts) and linked from report.md. Works for any model and
    dataset (--model, --dataset, --data-dir).

    With the pretrained models it took 92-105 s on two quiet CPU cores (AMD EPYC, 2026-12-03), the
    robustness section 35 s of it; one line per section shows where it is, and the longest are
    named at the end. The robustness sections run on fewer images than the commands (AutoAttack on
    12, for the first model, Square at 1,000 queries; corruptions on 100; certification on 10),
    and the page says so.

    \b
    Example:  kerascnn report --out runs/report
    """

    config = ReportConfig(out_dir=out_dir, dataset=dataset, data_dir=data_dir, model=model, bn_model=bn_model,
                          retrain=retrain, compare_dir=compare_dir, force=force, domain=domain,
                          sections=sections, full_paths=full_paths)
    config.check()
    quiet_tensorflow()

    started = time.perf_counter()
    result = build_report(config, progress=click.echo)
    click.echo(f"report written in {time.perf_counter() - started:.0f} s: {result.html} ({len(result.figures)} "
               f"figures embedded), {result.markdown} with its PNG files beside it")


COMMANDS = [report]
