"""FAB-T's time with the hyperplane-and-box projection as it is (sum_i |direction_i| min(t, reach_i)
per halving) against the form it had until 2026-12-06 (direction_i * clip(t sign_i, low_i, high_i)),
which gives the same float32 terms: alternated rounds on the same images, each side on a freshly
loaded model (its own compiled loop), and the adversarial images of the two compared bit for bit.

    python benchmarks/bench_fab.py                              # cnn at eps 0.1, cnn_pgd at 0.3, 200 images
    python benchmarks/bench_fab.py --runs cnn:0.1 --count 50 --rounds 1

Prints one JSON line per measurement, each with the host (CPU model, flags). Run it on quiet cores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosts import machine  # noqa: E402  (the CPU, its flags and kernels; no TensorFlow)
from kerascnn.cpu import choose_kernels  # noqa: E402


def main() -> None:
    choose_kernels()  # as the CLI does, before TensorFlow starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["cnn:0.1", "cnn_pgd:0.3"], help="MODEL:EPS (shipped models)")
    parser.add_argument("--count", type=int, default=200, help="the first COUNT test images")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import keras
    import numpy as np

    from kerascnn import SAVED_MODELS
    from kerascnn.attacks import boundary
    from kerascnn.data.tasks import Task
    from tests.test_fab import clip_form_project  # the old form, kept as the test's reference

    host = machine()
    print(json.dumps({"measure": "machine"} | host), flush=True)
    images, labels = Task().test()
    images, labels = images[:args.count], labels[:args.count]
    sides = {"sum_of_min": boundary.project, "clip_form": clip_form_project}
    for run in args.runs:
        name, eps = run.split(":")
        seconds, found = {side: [] for side in sides}, {}
        for _ in range(args.rounds):
            for side, project in sides.items():
                boundary.project = project  # read when the FAB loop is traced, on the fresh model below
                try:
                    model = keras.models.load_model(SAVED_MODELS / name / "model.keras")
                    begin = time.perf_counter()
                    result = boundary.fab(model, images, labels, float(eps), targeted=True)
                    seconds[side].append(round(time.perf_counter() - begin, 2))
                finally:
                    boundary.project = sides["sum_of_min"]
                found[side] = result.images
        within = np.abs(found["sum_of_min"] - images).reshape(len(images), -1).max(1) <= float(eps)
        print(json.dumps({"measure": "fab-t", "model": name, "eps": float(eps), "count": args.count,
                          "seconds": seconds, "best": {s: min(v) for s, v in seconds.items()},
                          "speedup": round(min(seconds["clip_form"]) / min(seconds["sum_of_min"]), 3),
                          "identical_images": bool(np.array_equal(found["sum_of_min"], found["clip_form"])),
                          "found_within_eps": int(within.sum())} | host), flush=True)


if __name__ == "__main__":
    main()
