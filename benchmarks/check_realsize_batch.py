"""Would a larger memory budget speed up the commands on a model of real size? (issue 36, goal 2)

The batch of a gradient pass comes from kerascnn.model.batching's 2 GiB budget: 8 images of a
MobileNetV2 at 224 px (87 MB of activations an image, three times over with gradients). This times
input gradients (as FMN, PGD and the attributions take them) of keras.applications.MobileNetV2
(weights=None, 5 classes) at 4, 8 and 20 images a call, the best of 3 rounds of 3 calls each, and
prints images/s per batch size as JSON. Run it on quiet cores.

    python benchmarks/check_realsize_batch.py
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosts import machine  # noqa: E402


def main() -> None:
    from kerascnn.cpu import choose_kernels

    choose_kernels()
    import keras
    import tensorflow as tf

    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=5)

    @tf.function(reduce_retracing=True)
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(model(x, training=False)[:, 0])
        return tape.gradient(y, x)

    rates = {}
    for batch in (4, 8, 20):
        x = tf.random.uniform((batch, 224, 224, 3))
        gradient(x).numpy()  # compile
        best = float("inf")
        for _ in range(3):
            begin = time.perf_counter()
            for _ in range(3):
                gradient(x).numpy()
            best = min(best, (time.perf_counter() - begin) / 3)
        rates[batch] = round(batch / best, 2)
    print(json.dumps({"measure": "gradient_batch", "model": "MobileNetV2 224 px, 5 classes, weights=None",
                      "images_per_second": rates} | machine()), flush=True)


if __name__ == "__main__":
    main()
