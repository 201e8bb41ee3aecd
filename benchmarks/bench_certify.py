"""Speed of randomized smoothing on this machine: the model's own images/s (one forward pass per
image, as `kerascnn evaluate` runs it) against certify's noisy samples/s (the same model, the noise
drawn inside the compiled call), alternated; then the whole `certify --count C --n N` run.

    python benchmarks/bench_certify.py                         # cnn_smooth, 500 images, n 10,000
    python benchmarks/bench_certify.py --count 20 --n 1000     # a quick check that it runs

Prints one JSON line per measurement, each with the host (CPU model, avx512_bf16). The goal (issue
24): samples/s at least 80% of images/s, i.e. the model is the bottleneck. Run it on quiet cores.
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
    parser.add_argument("--model", default=None, help="a .keras file or run folder (default: saved_models/cnn_smooth)")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from kerascnn import SAVED_MODELS
    from kerascnn.smoothing import cohen as smoothing
    from kerascnn.model.predict import predict_logits
    from kerascnn.model.subject import Subject

    subject = Subject.load(args.model or SAVED_MODELS / "cnn_smooth")
    model = subject.logits_model
    images, _ = subject.task.test()
    host = machine()
    predict_logits(model, images[:2000])
    smoothing.counts(model, images[:1], 2000, 0.25)  # compile both before timing
    for repeat in range(args.repeats):
        begin = time.perf_counter()
        predict_logits(model, images)
        forward = len(images) / (time.perf_counter() - begin)
        begin = time.perf_counter()
        smoothing.counts(model, images[:5], 10_000, 0.25, seed=repeat)
        sampled = 50_000 / (time.perf_counter() - begin)
        print(json.dumps({"measure": "rate", "repeat": repeat, "model": subject.name, "images_per_second": round(forward),
                          "samples_per_second": round(sampled), "ratio": round(sampled / forward, 3)} | host), flush=True)
    begin = time.perf_counter()
    result = smoothing.certify(model, images[:args.count], 0.25, n0=100, n=args.n, alpha=0.001)
    seconds = time.perf_counter() - begin
    print(json.dumps({"measure": "certify", "model": subject.name, "count": args.count, "n": args.n,
                      "seconds": round(seconds, 1), "samples_per_second": round(args.count * (args.n + 100) / seconds),
                      "abstained": float((result["prediction"] == smoothing.ABSTAIN).mean())} | host), flush=True)


if __name__ == "__main__":
    main()
