"""`kerascnn robustness` and `kerascnn transfer`: accuracy under eps-bounded attacks
(kerascnn.experiments.robustness), and noise made on one model measured on another
(kerascnn.experiments.transfer)."""
from __future__ import annotations

import os

import click

from cli.common import RUNS, build_subject, default_of, finite, guarded, quiet_tensorflow, task_options
from cli.domain_options import domain_options
from cli.lists import CommaList
from cli.output import emit, json_option, on_terminal, out_options
from cli.study_options import engine_options, study_folder
from kerascnn import SAVED_MODELS
from kerascnn.attacks.ensemble import VERSIONS
from kerascnn.attacks.fgm import check_epsilons
from kerascnn.errors import BadValue, UserError
from kerascnn.experiments.robustness import ATTACKS, DEFAULT_EPS, Options
from kerascnn.experiments.transfer import Options as TransferOptions
from kerascnn.outputs.folders import check_output_folder


def _attacks(items: tuple) -> tuple:
    """--attack's items (kerascnn.lists.split_list) -> known names, lower-cased, repeats dropped."""
    names = tuple(dict.fromkeys(v.lower() for v in items))
    bad = [n for n in names if n not in ATTACKS + ("fgm",)]
    if bad:
        raise BadValue("attacks", f"unknown {bad[0]!r}: choose from {', '.join(ATTACKS)} (comma-separated)")
    if "autoattack" in names and set(names) & set(ATTACKS[2:-1]):
        raise BadValue("attacks", f"give autoattack or some of its components, not both (got {','.join(items)})")
    return names


def _models(ctx, param, value):
    for v in value:
        if not str(v).strip():
            raise click.BadParameter("is empty: give a .keras file or a run folder")
    return tuple(value)


def _eps_help() -> str:
    return "; ".join(f"{norm}: {','.join(f'{e:g}' for e in values)}" for norm, values in DEFAULT_EPS.items())


@click.command()
@task_options
@click.option("--model", "models", multiple=True, type=click.Path(), callback=_models,
              help="A .keras image classifier, or a run folder of `kerascnn train` (holding model.keras); repeat "
                   "for several, measured as one study (see below). Default: the pretrained saved_models/cnn for "
                   "MNIST; runs/<dataset>_cnn otherwise.")
@domain_options
@click.option("--attack", "attacks", default=",".join(default_of(Options, "attacks")), show_default=True,
              type=CommaList(_attacks, "A1,A2,..."),
              help="Attacks, comma-separated: fgsm (one step; FGM for l2), pgd, autoattack (the --version's "
                   "ensemble), or AutoAttack's components run in the order given: apgd-ce, apgd-dlr, apgd-t, fab, "
                   "fab-t, square.")
@click.option("--version", type=click.Choice(list(VERSIONS)), default=default_of(Options, "version"),
              show_default=True, help="AutoAttack's version: standard (apgd-ce, apgd-t, fab-t, square), plus "
                                      "(restarts, more components) or rand (EOT, for models with randomness).")
@click.option("--norm", type=click.Choice(["linf", "l2"]), default=default_of(Options, "norm"), show_default=True,
              help="The threat model: the largest pixel change (linf) or the L2 length of the change.")
@click.option("--eps", default=None, type=CommaList(check_epsilons, "E1,E2,..."),
              help=f"Radii, comma-separated, each >= 0 (default: {_eps_help()}).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Iterations: PGD's steps (default 40), APGD's and FAB's iterations (default 100, AutoAttack's).")
@click.option("--step-fraction", type=float, default=None, callback=finite(0, low_open=True),
              help="PGD's step as a fraction of eps (default 2.5 / steps, Madry et al.).")
@click.option("--restarts", type=click.IntRange(min=1), default=default_of(Options, "restarts"), show_default=True,
              help="PGD attempts from independent random starts.")
@click.option("--queries", type=click.IntRange(min=1), default=default_of(Options, "queries"), show_default=True,
              help="Square's queries per image.")
@click.option("--count", type=click.IntRange(min=1), default=default_of(Options, "count"), show_default=True,
              help="The first N test images.")
@click.option("--sanity", type=click.IntRange(min=0), default=default_of(Options, "sanity"), show_default=True,
              help="Images also attacked at a huge eps (linf 1), where any model must fall to 0% (0: skip).")
@click.option("--seed", type=int, default=default_of(Options, "seed"), show_default=True,
              help="Seeds PGD's random starts.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder. Default: runs/robustness, replaced whole when it is this command's earlier output; "
                   "with several models runs/robustness_models, written into (its runs/ are reused).")
@click.option("--force", is_flag=True,
              help="Write into an --out folder that kerascnn did not make (its other files are kept).")
@engine_options
@json_option
@guarded
def robustness(dataset, data_dir, models, domain, attacks, version, norm, eps, steps, step_fraction, restarts, queries,
               count, sanity, seed, out_dir, force, jobs, address, engine, as_json):
    """Accuracy under attack at each eps: the curve the field reports.

    Untargeted attacks on the first --count test images; an image counts as correct when the
    model is right on it clean and attacked, re-predicted from the attacked arrays. FGSM is one
    step; PGD (Madry et al.) takes --steps steps of --step-fraction * eps from a random start;
    AutoAttack (Croce & Hein 2020) runs APGD-CE, APGD-T, FAB-T and Square, each on the images
    still right, and prints the accuracy after each. Every number is an upper bound: quote
    AutoAttack's. The default, FGSM and APGD-CE, is the quick look. All eps go through the model
    as one batch.

    The result holds the gradient-masking checks (iterative attacks never above FGSM, accuracy
    never rising with eps, 0% at a huge eps, a cheaper attack within 2 points of AutoAttack,
    Square adding nothing) and per-class accuracy. Writes robustness.png, examples.png and
    result.json.

    Measured on two shared CPU cores (AMD EPYC): the default over 1,000 MNIST images at four eps,
    35-60 s per shipped model; --attack autoattack at one eps over 1,000 images, about 10 minutes
    for cnn and 17 for the robust cnn_pgd (FAB-T and Square take most of it, on the images that
    survive); use --count 200 for a first look.

    Several models (--model A --model B ...) are one study: each model's columns (FGSM, PGD, the
    ensemble) are its runs, saved in OUT/runs/ so that the same command after an interruption
    reuses the finished ones. --jobs N runs N at a time, on Ray when it is installed (--address
    for a cluster), else in local processes, as `kerascnn compare` does. It writes robustness.png
    with every model's curves, examples_<k>_<model>.png and result.json.

    \b
    Examples:
      kerascnn robustness --model saved_models/cnn_pgd
      kerascnn robustness --attack autoattack --eps 0.1,0.3 --count 1000
      kerascnn robustness --attack fgsm,pgd,apgd-ce,apgd-t --restarts 3
      kerascnn robustness --model saved_models/cnn --model saved_models/cnn_pgd --attack fgsm,pgd --jobs 2
    """
    options = Options(attacks=attacks, version=version, norm=norm, eps=eps, steps=steps, step_fraction=step_fraction,
                      restarts=restarts, queries=queries, count=count, sanity=sanity, seed=seed)
    if len(models) > 1 or jobs > 1 or address is not None:
        return _study(dataset, data_dir, models, domain, options, out_dir, force, jobs, address, engine, as_json)
    out_dir = out_dir or os.path.join(RUNS, "robustness")
    subject = build_subject(models[0] if models else None, dataset, data_dir, out_dir=out_dir, force=force,
                            command="robustness", domain=domain)
    import dataclasses

    import kerascnn as kc

    fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    result = kc.robustness(subject, progress=on_terminal(), **fields)  # a --count past the test split: refused
    emit(result, out_dir, force=force, as_json=as_json)


def _study(dataset, data_dir, models, domain, options, out_dir, force, jobs, address, engine, as_json) -> None:
    """Several models (or --jobs / --address): the study of kerascnn.experiments.robustness_models,
    written into its folder as compare's is (its runs/ stay and are reused)."""
    import time

    from kerascnn.data.sources import check_dataset_exists
    from kerascnn.data.tasks import Task
    from kerascnn.experiments import robustness_models as experiment

    if not models:
        raise click.UsageError("--jobs and --address run several models as a study: give them with --model")
    quiet_tensorflow()
    out_dir = out_dir or os.path.join(RUNS, "robustness_models")
    study = experiment.Options(models=models, attack=options, dataset=dataset, data_dir=data_dir, domain=domain,
                               out_dir=out_dir, jobs=jobs, address=address, engine=engine)
    study.check()
    check_dataset_exists(dataset, data_dir)
    task = Task(dataset, data_dir)
    task.check_count(options.count)

    def say(line: str) -> None:
        click.echo(line, err=True)

    started = time.perf_counter()
    with study.pool() as pool, study_folder(out_dir, "robustness", pool, force=force, protect=models) as where:
        resolved = options.resolved()
        total = len(models) * len(resolved.columns)
        say(f"Robustness of {len(models)} model(s) on {task.name}: "
            f"{', '.join(experiment.robustness.attack_label(c, resolved) for c in resolved.columns)} at eps "
            f"{','.join(f'{e:g}' for e in resolved.eps)} ({resolved.norm}) on {resolved.count} images; "
            f"{total} runs, {where} -> {out_dir}/")
        result = experiment.run(study, progress=say, pool=pool)
        say("")
        from kerascnn.api.results import Result

        emit(Result(experiment, result, "robustness", protect=models), out_dir, force=True, as_json=as_json)
    say(f"{total} runs{f' ({result.reused} reused)' if result.reused else ''} in {time.perf_counter() - started:.0f} s "
        f"(runs in {out_dir}/runs/)")


def _shipped_models(dataset: str, data_dir) -> list:

    if dataset != "mnist" or data_dir is not None:
        return []
    return [SAVED_MODELS / n for n in ("cnn", "cnn_bn", "cnn_pgd") if (SAVED_MODELS / n / "model.keras").is_file()]


@click.command()
@task_options
@click.option("--source-model", "sources", multiple=True, type=click.Path(exists=True),
              help="A model the noise is made on (repeat for several). Default on MNIST: the shipped models.")
@click.option("--eval-model", "evals", multiple=True, type=click.Path(exists=True),
              help="A model the noise is measured on (repeat for several). Default: the source models.")
@click.option("--norm", type=click.Choice(["linf", "l2"]), default=default_of(TransferOptions, "norm"), show_default=True)
@click.option("--eps", type=float, default=default_of(TransferOptions, "eps"), show_default=True,
              callback=finite(0), help="The budget of both noises.")
@click.option("--steps", type=click.IntRange(min=1), default=default_of(TransferOptions, "steps"), show_default=True,
              help="PGD steps.")
@click.option("--count", type=click.IntRange(min=1), default=default_of(TransferOptions, "count"), show_default=True,
              help="The first N test images.")
@click.option("--fit", type=click.IntRange(min=1), default=default_of(TransferOptions, "fit"), show_default=True,
              help="Training images each universal noise is fitted on.")
@domain_options
@out_options("transfer")
@json_option
@guarded
def transfer(dataset, data_dir, sources, evals, norm, eps, steps, count, fit, domain, out_dir, force, as_json):
    """Adversarial and universal noise made on one model, measured on others: the transfer matrix.

    For each --source-model: PGD examples of the first --count test images at --eps, and a
    universal noise towards 4 fitted on --fit training images at the same budget. Each is measured
    on each --eval-model: accuracy on the PGD examples, fraction turned into 4 by the universal
    noise. The diagonal is the white-box attack. Writes transfer_pgd.png, transfer_universal.png
    and result.json.

    \b
    Example:  kerascnn transfer --source-model saved_models/cnn --eval-model saved_models/cnn_bn
    """
    sources = list(sources) or _shipped_models(dataset, data_dir)
    if not sources:
        raise UserError("give the models: --source-model (and --eval-model) for a dataset other than MNIST")

    check_output_folder(out_dir, "transfer", force=force, protect=[*sources, *evals])  # refusals before any work
    source_subjects = [build_subject(p, dataset, data_dir, domain=domain) for p in sources]
    eval_subjects = [build_subject(p, dataset, data_dir, domain=domain) for p in evals] if evals else source_subjects
    import kerascnn as kc

    result = kc.transfer(source_subjects, eval_subjects if evals else None, norm=norm, eps=eps, steps=steps,
                         count=count, fit=fit, notify=lambda line: click.echo(line, err=True))
    emit(result, out_dir, force=force, as_json=as_json)


COMMANDS = [robustness, transfer]
