"""Speed of the robustness attacks on this machine: PGD over `--count` test images at every eps as
one batch (what `kerascnn robustness` runs), FGSM, and the minimum-norm attack FMN.

    python benchmarks/bench_robustness.py                        # PGD-40, 1,000 images, eps 0.05-0.3
    python benchmarks/bench_robustness.py --count 50 --steps 5   # a quick check that it runs

Prints one JSON line per measurement: seconds (after a warm-up call that compiles), images/s (image
x eps pairs attacked per second) and steps/s (image-gradient evaluations per second: PGD's early
stop makes this an upper bound on the work done, since fooled images stop stepping). No early stop
is made for `pgd_all_steps`, which times the full steps x images. Timings depend on what else the
machine runs: on shared cores, say so beside them.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def timed(call) -> float:
    begin = time.perf_counter()
    call()
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a .keras file or run folder (default: saved_models/cnn)")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--eps", default="0.05,0.1,0.2,0.3")
    parser.add_argument("--minimal-count", type=int, default=100)
    parser.add_argument("--minimal-steps", type=int, default=300)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from kerascnn.attacks.fgm import fgm
    from kerascnn.attacks.minimal_norm import minimal
    from kerascnn.attacks.projected_gradient import pgd
    from kerascnn.model.subject import Subject

    subject = Subject.load(args.model)
    model = subject.logits_model
    images, labels = subject.task.test()
    images, labels = images[:args.count], labels[:args.count]
    eps = [float(e) for e in args.eps.split(",")]
    tiled = np.tile(images, (len(eps), 1, 1, 1))
    tiled_labels = np.tile(labels, len(eps))
    radii = np.repeat(np.asarray(eps, np.float32), len(images))
    pairs = len(tiled)
    common = {"model": subject.name, "count": args.count, "eps": eps, "cpus": os.cpu_count(),
              "tensorflow": tf.__version__}

    for name, stop in (("pgd", True), ("pgd_all_steps", False)):
        run = lambda: pgd(model, tiled, tiled_labels, radii, steps=args.steps, stop_when_fooled=stop)  # noqa: E731
        pgd(model, tiled[:8], tiled_labels[:8], radii[:8], steps=2, stop_when_fooled=stop)  # compile
        seconds = timed(run)
        emit(common | {"kind": name, "steps": args.steps, "seconds": round(seconds, 3),
                       "images_per_second": round(pairs / seconds, 1),
                       "steps_per_second": round(pairs * args.steps / seconds, 1)})
    fgm(model, tiled[:8], tiled_labels[:8], radii[:8])
    seconds = timed(lambda: fgm(model, tiled, tiled_labels, radii))
    emit(common | {"kind": "fgsm", "seconds": round(seconds, 3), "images_per_second": round(pairs / seconds, 1)})
    few = images[:args.minimal_count]
    for norm in ("l2", "linf"):
        minimal(model, few[:4], labels[:4], norm=norm, steps=2)
        seconds = timed(lambda: minimal(model, few, labels[:len(few)], norm=norm, steps=args.minimal_steps))
        emit(common | {"kind": f"fmn_{norm}", "count": len(few), "steps": args.minimal_steps,
                       "seconds": round(seconds, 3), "images_per_second": round(len(few) / seconds, 2),
                       "steps_per_second": round(len(few) * args.minimal_steps / seconds, 1)})


if __name__ == "__main__":
    main()
