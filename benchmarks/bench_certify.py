"""Speed of randomized smoothing on this machine: the model's own images/s (one forward pass per
image, as `kerascnn evaluate` runs it) against certify's noisy samples/s (the same model, the noise
drawn inside the compiled call), alternated; then the whole `certify --count C --n N` run.

    python benchmarks/bench_certify.py                         # cnn_smooth, 500 images, n 10,000
    python benchmarks/bench_certify.py --count 20 --n 1000     # a quick check that it runs
    python benchmarks/bench_certify.py --precision both        # fp32 against bf16, and the profile

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
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "both"],
                        help="both: fp32 and bf16 sampling alternated, then a profile of the fp32 block")
    args = parser.parse_args()
    if args.precision == "both":
        return compare_precisions(args)

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
    result = smoothing.certify(model, images[:args.count], 0.25, n0=100, n=args.n, alpha=0.001,
                               precision=args.precision)
    seconds = time.perf_counter() - begin
    print(json.dumps({"measure": "certify", "model": subject.name, "count": args.count, "n": args.n,
                      "precision": args.precision,
                      "seconds": round(seconds, 1), "samples_per_second": round(args.count * (args.n + 100) / seconds),
                      "abstained": float((result["prediction"] == smoothing.ABSTAIN).mean())} | host), flush=True)


def compare_precisions(args) -> None:
    """fp32 against bf16 sampling, alternated (5 images x 10,000 samples each round), the counts of two
    fp32 runs compared (they must be identical), and where an fp32 block's time goes: the noise
    alone, the model alone on the same noisy images, and the two together as counts() runs them."""
    import numpy as np
    import tensorflow as tf

    from kerascnn import SAVED_MODELS
    from kerascnn.model.network import layer_table
    from kerascnn.model.subject import Subject
    from kerascnn.smoothing import cohen as smoothing

    subject = Subject.load(args.model or SAVED_MODELS / "cnn_smooth")
    model = subject.logits_model
    images, _ = subject.task.test()
    host = machine()
    for precision in ("fp32", "bf16"):
        smoothing.counts(model, images[:1], 2000, 0.25, precision=precision)  # compile before timing
    rates = {"fp32": [], "bf16": []}
    for repeat in range(args.repeats):
        for precision in ("fp32", "bf16"):
            begin = time.perf_counter()
            smoothing.counts(model, images[:5], 10_000, 0.25, seed=repeat, precision=precision)
            rates[precision].append(50_000 / (time.perf_counter() - begin))
    same = np.array_equal(smoothing.counts(model, images[:20], 2000, 0.25, seed=7),
                          smoothing.counts(model, images[:20], 2000, 0.25, seed=7))
    half, full = (smoothing.counts(model, images[:20], 2000, 0.25, seed=7, precision=p) for p in ("bf16", "fp32"))
    print(json.dumps({"measure": "precision", "model": subject.name,
                      "samples_per_second": {p: [round(r) for r in v] for p, v in rates.items()},
                      "best": {p: round(max(v)) for p, v in rates.items()},
                      "bf16_over_fp32": round(max(rates["bf16"]) / max(rates["fp32"]), 3),
                      "fp32_counts_identical_across_runs": bool(same),
                      "bf16_count_changes_per_2000": float(np.abs(half - full).sum(axis=1).mean() / 2)} | host),
          flush=True)
    batch = 1000
    x = tf.constant(images[:1])

    @tf.function
    def noise(x, seed):
        copies = tf.repeat(x, batch, axis=0)
        return copies + 0.25 * tf.random.stateless_normal(tf.shape(copies), seed)

    @tf.function
    def classify(z):
        return tf.argmax(model(z, training=False), axis=1)

    @tf.function
    def both(x, seed):
        return classify(noise(x, seed))

    key = tf.constant([0, 1], tf.int64)
    noisy = noise(x, key)
    parts = {"noise": (noise, (x, key)), "model": (classify, (noisy,)), "noise+model": (both, (x, key))}
    milliseconds = {}
    for name, (f, a) in parts.items():
        f(*a)
        begin = time.perf_counter()
        for _ in range(20):
            f(*a).numpy()
        milliseconds[name] = round((time.perf_counter() - begin) / 20 * 1000, 2)
    flops = 2 * layer_table(model).total_macs   # kerascnn summary's multiply-adds, two FLOPs each
    print(json.dumps({"measure": "profile", "model": subject.name, "batch": batch, "ms_per_block": milliseconds,
                      "model_share": round(milliseconds["model"] / milliseconds["noise+model"], 3),
                      "mflop_per_image": round(flops / 1e6, 2),
                      "model_gflop_per_second": round(flops * batch / milliseconds["model"] / 1e6, 1)} | host),
          flush=True)


if __name__ == "__main__":
    main()
