"""--jobs, --address and --engine: the options of a study whose runs kerascnn.study.engine runs; and
the study's output folder, written in place (its runs/ stay and are reused)."""
from __future__ import annotations

import click

from cli.common import not_empty
from kerascnn.api.studies import study_folder  # noqa: F401  (compare and the robustness study hold their folder so)


def engine_options(func):
    """--jobs, --address and --engine: where a study's runs run (kerascnn.study.engine)."""
    func = click.option(
        "--engine", type=click.Choice(["auto", "ray", "processes"]), default="auto", show_default=True,
        help="What runs the runs with --jobs above 1: auto is Ray when it is installed (pip install -e "
             "\".[cluster]\"), else local worker processes (concurrent.futures).")(func)
    func = click.option(
        "--address", default=None, callback=not_empty("give auto, HOST:PORT or ray://HOST:PORT"), metavar="ADDRESS",
        help="Run on a Ray cluster: auto (the one `ray start` made on this machine), HOST:PORT or ray://HOST:PORT "
             "(Ray Client). The output folder must be on a disk every machine of the cluster shares.")(func)
    return click.option(
        "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
        help="Runs at a time, each in its own worker process with cores / N intra-op threads (1: one after "
             "another in this process, all cores; on a cluster, cluster CPUs / N each). Results equal a serial "
             "run's up to floating-point rounding (the thread count changes the order of sums); the same --jobs "
             "repeats them bit for bit.")(func)
