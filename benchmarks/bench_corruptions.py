"""Seconds to generate each corruption, with the ray-kernel correlation as it is (one shifted slice per
weight: kerascnn.corrupt.helpers.correlate_sparse) against ndimage.correlate, which it replaced on
2026-12-06 and which gives the same float64s: both sides on the same images, images compared bit for bit.

    python benchmarks/bench_corruptions.py                         # common at 224 px (20 images), mnist-c at 28 px (1,000)
    python benchmarks/bench_corruptions.py --runs common:64:100 --severities 3

Prints one JSON line per (suite, size): seconds per corruption summed over the severities, both ways.
No TensorFlow. Run it on quiet cores.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosts import machine  # noqa: E402


def ndimage_form(image, kernel, mode="constant"):
    """What motion blur and snow called before 2026-12-06."""
    if image.ndim == 2:
        return ndimage.correlate(image, kernel, mode=mode)
    return np.stack([ndimage.correlate(image[..., c], kernel, mode=mode) for c in range(image.shape[-1])], -1)


def timed(images, suite, severities, names):
    from kerascnn.corrupt import corrupt

    seconds, out = {}, {}
    for name in names:
        begin = time.perf_counter()
        out[name] = [corrupt(images, name, s, 0, suite) for s in severities]
        seconds[name] = round(time.perf_counter() - begin, 3)
    return seconds, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["common:224:20", "mnist-c:28:1000"], help="SUITE:SIZE:COUNT")
    parser.add_argument("--severities", default="1,3,5", help="comma-separated, as the 224 px report takes")
    args = parser.parse_args()

    from kerascnn.corrupt import check_names, helpers

    severities = [int(s) for s in args.severities.split(",")]
    print(json.dumps({"kind": "machine"} | machine()), flush=True)
    for run in args.runs:
        suite, size, count = run.split(":")
        channels = 3 if suite == "common" else 1
        images = np.random.default_rng(0).random((int(count), int(size), int(size), channels)).astype(np.float32)
        names = check_names(suite, None)
        after, fast = timed(images, suite, severities, names)
        sparse = helpers.correlate_sparse
        helpers.correlate_sparse = ndimage_form
        try:
            changed = [n for n in names if n in ("motion_blur", "snow")]
            before, slow = timed(images, suite, severities, changed)
        finally:
            helpers.correlate_sparse = sparse
        same = all(np.array_equal(a, b) for n in changed for a, b in zip(fast[n], slow[n]))
        total_before = sum(after.values()) - sum(after[n] for n in changed) + sum(before.values())
        print(json.dumps({"kind": "corruptions", "suite": suite, "size": int(size), "count": int(count),
                          "severities": severities, "seconds_before": round(total_before, 1),
                          "seconds_after": round(sum(after.values()), 1), "bit_identical": same,
                          "changed_before": before, "changed_after": {n: after[n] for n in changed},
                          "after": after}), flush=True)


if __name__ == "__main__":
    main()
