"""Speed of the explanations (kerascnn.attributions.gradients, experiments.faithfulness) with the pretrained
model on MNIST, on this machine.

    python benchmarks/bench_explain.py                      # the issue's two measurements
    python benchmarks/bench_explain.py --count 5 --repeats 1 --no-command   # a quick check that it runs

Prints one JSON line per measurement:

  kind "one image"     all five methods on one test image (the first 7), as `kerascnn explain`
                       computes them: the first call (compilation included) and the median of
                       --repeats later calls, in total and per method.
  kind "faithfulness"  `--faithfulness --count N` in the library: maps of N images, deletion and
                       insertion curves, the randomisation check (--randomise images); per part.
  kind "command"       `kerascnn explain --digit 7` and `kerascnn explain --faithfulness --count N`
                       as a user runs them (a fresh process: TensorFlow's import, loading, the work,
                       the figures and files), wall time.

The figures depend on what else the machine is doing: run it while nothing else is busy.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def one_image(subject, repeats: int) -> None:
    from kerascnn.experiments import explain
    from kerascnn.data.tasks import Pick

    options = explain.Options(pick=Pick(class_name="7"))
    times, per_method = [], []
    for _ in range(repeats + 1):
        begin = time.perf_counter()
        result = explain.run(subject, options)
        times.append(time.perf_counter() - begin)
        per_method.append(result.seconds)
    later = per_method[1:] or per_method
    emit({"kind": "one image", "methods": list(result.maps), "first_s": round(times[0], 3),
          "median_s": round(statistics.median(times[1:] or times), 3),
          "per_method_median_s": {m: round(statistics.median(s[m] for s in later), 4) for m in result.maps},
          "completeness_relative_error": result.completeness["relative_error"], "cpus": os.cpu_count()})


def faithfulness(subject, count: int, randomise: int) -> None:
    from kerascnn.experiments import faithfulness as experiment

    begin = time.perf_counter()
    result = experiment.run(subject, experiment.Options(count=count, randomise=randomise))
    total = time.perf_counter() - begin
    emit({"kind": "faithfulness", "count": count, "randomise": randomise, "total_s": round(total, 3),
          "parts_s": {k: round(v, 3) for k, v in result.seconds.items()},
          "deletion_auc": {o: round(float(result.auc("deletion", o).mean()), 4) for o in result.orders},
          "insertion_auc": {o: round(float(result.auc("insertion", o).mean()), 4) for o in result.orders}})


def command(args: list[str], label: str) -> None:
    kerascnn = Path(sys.executable).with_name("kerascnn")
    program = [str(kerascnn)] if kerascnn.exists() else [sys.executable, "-c", "from cli.main import cli; cli()"]
    with tempfile.TemporaryDirectory() as tmp:
        begin = time.perf_counter()
        done = subprocess.run([*program, *args, "--out", os.path.join(tmp, "out")], capture_output=True, text=True)
        seconds = time.perf_counter() - begin
    emit({"kind": "command", "command": f"kerascnn {label}", "wall_s": round(seconds, 2), "exit": done.returncode})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="faithfulness: test images (default 100)")
    parser.add_argument("--randomise", type=int, default=10, help="faithfulness: randomisation images (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="one image: timed calls after the first")
    parser.add_argument("--no-command", action="store_true", help="skip the fresh-process command timings")
    args = parser.parse_args()

    from cli.common import quiet_tensorflow

    quiet_tensorflow()
    from kerascnn.model.subject import Subject

    subject = Subject.load()
    one_image(subject, args.repeats)
    faithfulness(subject, args.count, args.randomise)
    if not args.no_command:
        command(["explain", "--digit", "7"], "explain --digit 7")
        command(["explain", "--faithfulness", "--count", str(args.count)], f"explain --faithfulness --count {args.count}")


if __name__ == "__main__":
    main()
