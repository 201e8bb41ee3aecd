"""Would AutoAttack's search in bfloat16 be the same attack, faster? (issue 36: AutoAttack in a third of
the time; bf16 runs the model about 1.4x faster on an AVX512_BF16 host, as `certify --precision bf16`)

Runs the standard AutoAttack (kerascnn.attacks.ensemble.autoattack) on the first --count test images
three times: on the float32 model, on its bfloat16 copy (kerascnn.model.twin.bfloat16_twin), on the
float32 model again. For each it prints the time per component, the robust accuracy the run reports,
and the robust accuracy when its images are re-predicted by the float32 model (inside the ball).

    python benchmarks/check_autoattack_bf16.py --count 200 --model cnn --eps 0.1

2026-12-06 (AMD EPYC, AVX512_BF16): bf16 took 0.71x the time but left 61.0% robust against fp32's
52.5% once re-predicted in fp32: its adversarials sit on bf16's boundary, not fp32's. Not offered.
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
    parser.add_argument("--model", default="cnn", help="a shipped model's name")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()

    import keras
    import numpy as np

    from kerascnn import SAVED_MODELS
    from kerascnn.attacks.ensemble import autoattack
    from kerascnn.data.tasks import Task
    from kerascnn.model.predict import predict_logits
    from kerascnn.model.twin import bfloat16_twin

    host = machine()
    model = keras.models.load_model(SAVED_MODELS / args.model / "model.keras")
    images, labels = Task().test()
    images, labels = images[:args.count], labels[:args.count]
    for precision, attacked in (("fp32", model), ("bf16", bfloat16_twin(model)), ("fp32", model)):
        begin = time.perf_counter()
        result = autoattack(attacked, images, labels, args.eps)
        seconds = time.perf_counter() - begin
        wrong = predict_logits(model, result.images).argmax(axis=1) != labels
        inside = np.abs(result.images - images).reshape(len(images), -1).max(axis=1) <= args.eps + 1e-6
        print(json.dumps({"measure": "autoattack", "model": args.model, "eps": args.eps, "count": args.count,
                          "precision": precision, "seconds": round(seconds, 1),
                          "components": result.settings["seconds"],
                          "robust_accuracy_reported": float(result.correct_per_restart[-1].mean()),
                          "robust_accuracy_fp32": float(1 - np.mean(wrong & inside))} | host), flush=True)


if __name__ == "__main__":
    main()
