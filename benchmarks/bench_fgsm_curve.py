"""FGSM/FGM over a robustness curve: fgm on the tiled batch (each image once per eps, as `kerascnn
robustness` ran it before 2026-12-06) against fgm_curve (one gradient per image), the same process,
the second of two runs each; the adversarials compared bit for bit, and the re-predicted classes.

    python benchmarks/bench_fgsm_curve.py cnn                     # a shipped model, 1,000 MNIST images
    python benchmarks/bench_realsize.py --build-into /tmp/rs       # a MobileNetV2 at 224 px, then:
    python benchmarks/bench_fgsm_curve.py /tmp/rs/mobilenetv2.keras --data /tmp/rs/data --preprocess mobilenet_v2 --count 100

Prints one JSON line per norm, with the host (CPU model and flags). Run it on quiet cores.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosts import machine  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("model", help="a shipped model name (cnn, cnn_bn, ...) or a .keras file")
parser.add_argument("--data", default=None)
parser.add_argument("--preprocess", default=None)
parser.add_argument("--count", type=int, default=1000)
args = parser.parse_args()

from kerascnn import SAVED_MODELS  # noqa: E402
from kerascnn.api.inputs import subject as make  # noqa: E402
from kerascnn.attacks.fgm import fgm, fgm_curve  # noqa: E402

path = SAVED_MODELS / args.model if (SAVED_MODELS / args.model).is_dir() else args.model
s = make(path, args.data, preprocess=args.preprocess)
count = args.count
x, y = s.task.test(); x, y = x[:count], y[:count]
eps = [0.05, 0.1, 0.2, 0.3]
m = s.logits_model
for norm in ("linf", "l2"):
    e = eps if norm == "linf" else [0.5, 1.0, 2.0, 3.0]
    for _ in range(2):  # the second run of each is timed: the first traces for every batch shape
        b = time.perf_counter()
        old = fgm(m, np.tile(x, (4, 1, 1, 1)), np.tile(y, 4), np.repeat(np.float32(e), len(x)), norm=norm)
        t_old = time.perf_counter() - b
        b = time.perf_counter()
        new = fgm_curve(m, x, y, e, norm=norm)
        t_new = time.perf_counter() - b
    rows = np.any((old.images != new.images).reshape(len(old.images), -1), axis=1)
    print(json.dumps({"measure": "fgsm_curve", "model": s.name, "norm": norm, "images": len(x), "eps": e,
                      "seconds_tiled": round(t_old, 2), "seconds_curve": round(t_new, 2),
                      "images_differing": int(rows.sum()),
                      "predictions_differing": int((old.predicted != new.predicted).sum()),
                      "max_abs_difference": float(np.abs(old.images - new.images).max())} | machine()), flush=True)
