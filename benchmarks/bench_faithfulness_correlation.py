"""Faithfulness correlation of five methods' maps: one call per method (as before 2026-12-06) against
one call for all of them (kerascnn.attributions.metrics.faithfulness_correlation with a dict of maps,
whose forward passes run once), in the same process; the scores must be bit-equal.

    python benchmarks/bench_faithfulness_correlation.py                     # shipped cnn, 100 MNIST images
    python benchmarks/bench_realsize.py --build-into /tmp/rs                # a MobileNetV2 at 224 px, then:
    python benchmarks/bench_faithfulness_correlation.py --model /tmp/rs/mobilenetv2.keras --data /tmp/rs/data \\
        --preprocess mobilenet_v2 --count 4

Prints one JSON line per repeat with the host (CPU model and flags). Run it on quiet cores.
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
from hosts import machine  # noqa: E402

METHODS = ("saliency", "integrated_gradients", "smoothgrad", "gradcam", "occlusion")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a .keras file or run folder (default: saved_models/cnn)")
    parser.add_argument("--data", default=None, help="an image folder (default: MNIST)")
    parser.add_argument("--preprocess", default=None)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import numpy as np

    from kerascnn import SAVED_MODELS
    from kerascnn.api.inputs import subject as make_subject
    from kerascnn.attributions import metrics

    subject = make_subject(args.model or SAVED_MODELS / "cnn", args.data, preprocess=args.preprocess)
    x, _ = subject.task.test()
    x = x[:args.count]
    targets = subject.logits(x).argmax(axis=1)
    rng = np.random.default_rng(0)  # the scores' cost does not depend on the maps: random ones will do
    maps = {m: rng.normal(size=x.shape[:3]) for m in METHODS}
    for repeat in range(args.repeats):
        begin = time.perf_counter()
        apart = {m: metrics.faithfulness_correlation(subject.logits, x, targets, v) for m, v in maps.items()}
        per_method = time.perf_counter() - begin
        begin = time.perf_counter()
        together = metrics.faithfulness_correlation(subject.logits, x, targets, maps)
        one_call = time.perf_counter() - begin
        print(json.dumps({"measure": "faithfulness_correlation", "model": subject.name, "input": list(x.shape[1:]),
                          "images": len(x), "methods": len(maps), "nr_runs": 100, "repeat": repeat,
                          "seconds_per_method_calls": round(per_method, 2), "seconds_one_call": round(one_call, 2),
                          "bit_equal": all(np.array_equal(apart[m], together[m], equal_nan=True) for m in maps)}
                         | machine()), flush=True)


if __name__ == "__main__":
    main()
