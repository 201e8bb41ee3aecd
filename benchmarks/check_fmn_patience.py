"""Would FMN stop early per image without moving the median norm? (issue 36's lever for `attack minimal`)

Runs FMN (kerascnn.attacks.minimal_norm, the command's 300 steps, untargeted, before the bisection)
once on the first --count right test images and records each image's best norm after every step.
Then, for each window W and tolerance tol, it replays a per-image stop: an image that has met its
goal stops once its best norm has not fallen below (1 - tol) x its last improvement for W steps.
It prints, per (W, tol), the share of the steps that would still run and the median norm against
the full run's. The goal was a median within 2% of the full run.

    python benchmarks/check_fmn_patience.py --model cnn --count 1000
    python benchmarks/check_fmn_patience.py --model cnn_pgd --count 500

No timing: the share of steps is the work saved. Prints JSON lines.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosts import machine  # noqa: E402


def traced(model, x, labels, steps: int, norm: str):
    """(steps, N) best norm after each FMN step, and (N,) after the last point: the library's own
    body (minimal_norm.fmn_images), with its loop writing the best norms into a TensorArray."""
    import inspect

    import tensorflow as tf

    from kerascnn.attacks import minimal_norm

    code = inspect.getsource(minimal_norm.fmn_images)
    loop = ("    start = (tf.constant(0), tf.zeros_like(x), tf.zeros([n]), x, tf.fill([n], np.inf), tf.zeros([n], tf.bool))\n"
            "    _, delta, _, best, best_norm, found = tf.while_loop(lambda i, *rest: i < steps, body, start)")
    assert loop in code, "minimal_norm.fmn_images changed: update this replay"
    code = code.replace(loop, (
        "    trace = tf.TensorArray(tf.float32, size=steps)\n"
        "    def recorded(i, delta, eps, best, best_norm, found, trace):\n"
        "        out = body(i, delta, eps, best, best_norm, found)\n"
        "        return out + (trace.write(i, out[4]),)\n"
        "    start = (tf.constant(0), tf.zeros_like(x), tf.zeros([n]), x, tf.fill([n], np.inf), tf.zeros([n], tf.bool), trace)\n"
        "    _, delta, _, best, best_norm, found, trace = tf.while_loop(lambda i, *rest: i < steps, recorded, start)"))
    code = code.replace("    return best, best_norm", "    return best, best_norm, trace.stack()")
    space = dict(vars(minimal_norm))
    exec(code, space)
    run = tf.function(lambda x, y: space["fmn_images"](model, x, y, steps, norm, False, 0.0, minimal_norm.ALPHA[norm]))
    import numpy as np

    finals, traces = [], []
    for i in range(0, len(x), 500):
        _, final, trace = run(tf.constant(x[i:i + 500]), tf.constant(labels[i:i + 500], tf.int32))
        finals.append(final.numpy())
        traces.append(trace.numpy())
    return np.concatenate(traces, axis=1), np.concatenate(finals)


def replay(trace, final, window: int, tol: float):
    """(share of steps run, per-image norms at the stop) for one stopping rule."""
    import numpy as np

    steps, n = trace.shape
    stop, got = np.full(n, steps), final.copy()
    for j in range(n):
        mark, since = np.inf, 0
        for i in range(steps):
            value = trace[i, j]
            if value < mark * (1 - tol):
                mark, since = value, 0
            else:
                since += 1
            if np.isfinite(value) and since >= window:
                stop[j], got[j] = i + 1, value
                break
    return float(stop.mean() / steps), got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn", help="a shipped model's name, a .keras file or a run folder")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--norm", default="l2", choices=["l2", "linf"])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    from kerascnn.cpu import choose_kernels

    choose_kernels()
    import numpy as np

    from kerascnn import SAVED_MODELS
    from kerascnn.model.predict import predict_logits
    from kerascnn.model.subject import Subject

    path = SAVED_MODELS / args.model if (SAVED_MODELS / args.model).is_dir() else Path(args.model)
    subject = Subject.load(path)
    x, y = subject.task.test()
    x, y = x[:args.count], y[:args.count]
    right = predict_logits(subject.logits_model, x).argmax(axis=1) == y
    trace, final = traced(subject.logits_model, x[right], y[right], args.steps, args.norm)
    full = float(np.median(final))
    host = machine()
    for tol in (1e-3, 3e-3, 1e-2):
        for window in (10, 20, 30, 50, 75):
            share, got = replay(trace, final, window, tol)
            print(json.dumps({"measure": "fmn_patience", "model": subject.name, "norm": args.norm,
                              "images": int(right.sum()), "steps": args.steps, "window": window, "tol": tol,
                              "steps_run": round(share, 3), "median": round(float(np.median(got)), 4),
                              "median_full": round(full, 4), "median_change": round(float(np.median(got)) / full - 1, 4)}
                             | host), flush=True)


if __name__ == "__main__":
    main()
