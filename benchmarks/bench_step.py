"""The steady training step of kerascnn's training models, measured in one process.

    python benchmarks/bench_step.py                       # with vs without batch norm, bf16 and fp32
    python benchmarks/bench_step.py --ablate              # what each part of batch norm costs a step
    python benchmarks/bench_step.py --fc1                 # fc1's share of a step: Adam, casts, matmuls
    python benchmarks/bench_step.py --conv1               # conv1 as a convolution or a matmul over patches
    python benchmarks/bench_step.py --pool-first          # the plain network's ReLU before or after its pool
    python benchmarks/bench_step.py --profile --precision fp32 --batch-sizes 64   # the step's time by op type

bench_train.py times whole epochs, each in a fresh process, which is what a user sees; on a shared
host those vary by 10-30% from one process to the next, which hides a lever worth 5%. Here every
variant is built and traced once in the same process, then trained on the same 10 chunks of 64 steps
(real MNIST images) in alternated rounds (A B C, C B A, ...), so host noise falls on all of them alike.
It measures only the steady steps: no tracing, no validation passes, no epoch-end work.
Prints one JSON line per variant: the median time per step and the median of the per-round ratios
to the first variant.

--ablate removes parts of batch norm from the training model (fc1's, the conv layers', the moving
statistics' updates). Those models compute something else; they only bound what a faster version
of that part could save.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from bench_train import IDX, ROOT, machine
from kerascnn.cpu import choose_kernels

CHUNK = 64  # steps per call into TensorFlow, as `kerascnn train` does


def training_model(batchnorm: bool, precision: str, without: str | None = None, pool_first: bool | None = None):
    """kerascnn's training model (kerascnn.training.fit builds the same), optionally without a part of
    batch norm: "fc1" (its batch norm is the identity), "conv" (the same for conv1's and conv2's), or
    "moving" (no updates of the moving statistics)."""
    import tensorflow as tf

    import kerascnn.model.batchnorm as kb
    from kerascnn.model.network import build_model
    from kerascnn.training.precision import dtype_policy

    fused = kb.FusedBatchNormalization

    class Without(fused):
        def call(self, x, training=None, mask=None):
            if without == "fc1" and len(x.shape) == 2 or without == "conv" and len(x.shape) == 4:
                return x
            if without != "moving" or not training:
                return super().call(x, training=training, mask=mask)
            gamma, beta = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
            if len(x.shape) == 4:  # as FusedBatchNormalization, less the two assigns
                none = tf.constant([], tf.float32)
                y, *_ = tf.raw_ops.FusedBatchNormV3(x=x, scale=gamma, offset=beta, mean=none, variance=none,
                                                    epsilon=self.epsilon, is_training=True)
            else:  # as Keras' layer, less the two assigns
                xf = tf.cast(x, tf.float32)
                mean, variance = tf.nn.moments(xf, [0])
                y = tf.nn.batch_normalization(xf, mean, variance, beta, gamma, self.epsilon)
            return tf.cast(y, self.compute_dtype)

    kb.FusedBatchNormalization = Without if without else fused
    try:
        return build_model(batchnorm, dtype_policy(precision), fused_batchnorm=True, pool_first=pool_first)
    finally:
        kb.FusedBatchNormalization = fused


def batches(batch_size: int):
    import numpy as np
    import tensorflow as tf

    try:
        from kerascnn.data.tasks import Task

        images, labels = Task("mnist", str(IDX)).test()
    except Exception:  # no MNIST at hand: the step's cost hardly depends on the pixels
        rng = np.random.default_rng(0)
        images, labels = rng.random((10_000, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 10_000)
    # exactly 10 chunks of CHUNK steps (the 10,000 test images, repeated as needed)
    return (tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size, drop_remainder=True).cache()
            .repeat().take(CHUNK * 10).prefetch(2))


def Clock():
    """A Keras callback timing fit() from the first step to the last: with this benchmark's cached,
    repeated pipeline, fit() itself returned up to a second later, while TensorFlow deleted the data
    iterator (it waited for tf.data's autotuning thread; not seen with `kerascnn train`'s pipeline)."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_train_end(self, logs=None):
            self.seconds = time.perf_counter() - self.start

    return Clock()


def alternate(builders: dict, batch_size: int, rounds: int) -> dict:
    """Prints each variant's steady step; returns the seconds per step of each round, by variant."""
    from kerascnn.training.compiling import compile_for_training
    from kerascnn.training.config import TrainConfig

    data = batches(batch_size)
    steps = CHUNK * 10
    models = {}
    for name, build in builders.items():
        model = build()
        compile_for_training(model, TrainConfig(out_dir="unused", batch_size=batch_size), 3000)
        model.fit(data, epochs=1, verbose=0)  # traced and warmed up
        models[name] = model
    times = {name: [] for name in models}
    order = list(models)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            clock = Clock()
            models[name].fit(data, epochs=1, verbose=0, callbacks=[clock])
            times[name].append(clock.seconds / steps)
    first = times[order[0]]
    for name in order:
        ratios = [t / f for t, f in zip(times[name], first)]
        step = statistics.median(times[name])
        print(json.dumps({"summary": "step", "variant": name, "batch_size": batch_size,
                          "us_per_step": round(step * 1e6), "images_per_second": round(batch_size / step),
                          "ratio_to_first": round(statistics.median(ratios), 3), "rounds": rounds}), flush=True)
    return times


def time_loops(loops: dict, rounds: int, iterations: int = 500) -> dict:
    """Median seconds per iteration of each tf.function `loop(n)` (n iterations a call), the loops
    taking turns for `rounds` rounds after a warm-up call each."""
    for loop in loops.values():
        loop(10)
    times = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            start = time.perf_counter()
            loop(iterations)
            times[name].append((time.perf_counter() - start) / iterations)
    return {name: statistics.median(t) for name, t in times.items()}


def fc1(batch_size: int, rounds: int) -> None:
    """fc1's work in one bf16 step, alone: the cast of its float32 kernel, the three matmuls, the
    cast of the kernel's gradient and its fused Adam update (what a hand-fused kernel could save)."""
    import tensorflow as tf

    x = tf.random.normal((batch_size, 1568), dtype=tf.bfloat16)
    dy = tf.random.normal((batch_size, 500), dtype=tf.bfloat16)
    w = tf.Variable(tf.random.normal((1568, 500)) * 0.01)
    m, v = tf.Variable(tf.zeros_like(w)), tf.Variable(tf.zeros_like(w))

    def adam(grad):
        tf.raw_ops.ResourceApplyAdam(var=w.handle, m=m.handle, v=v.handle, beta1_power=0.9, beta2_power=0.999,
                                     lr=1e-6, beta1=0.9, beta2=0.999, epsilon=1e-7, grad=grad, use_locking=False)

    def whole(n):
        for _ in tf.range(n):
            kernel = tf.cast(w, tf.bfloat16)
            y = tf.matmul(x, kernel)
            dx = tf.matmul(dy + 0 * y, kernel, transpose_b=True)
            adam(tf.cast(tf.matmul(x + 0 * dx[:, :1], dy, transpose_a=True), tf.float32))
        return 0

    def adam_only(n):
        grad = tf.cast(tf.matmul(x, dy, transpose_a=True), tf.float32)
        for _ in tf.range(n):
            adam(grad)
        return 0

    def matmuls_only(n):
        kernel, total = tf.cast(w, tf.bfloat16), tf.zeros((), tf.bfloat16)
        for _ in tf.range(n):
            y = tf.matmul(x, kernel)
            dx = tf.matmul(dy + 0 * y, kernel, transpose_b=True)
            total += tf.matmul(x + 0 * dx[:, :1], dy, transpose_a=True)[0, 0]
        return total

    parts = {name: tf.function(f) for name, f in
             (("fc1_whole", whole), ("fc1_adam", adam_only), ("fc1_matmuls", matmuls_only))}
    for name, seconds in time_loops(parts, rounds).items():
        print(json.dumps({"summary": "fc1", "part": name, "batch_size": batch_size,
                          "us_per_step": round(seconds * 1e6)}), flush=True)


def conv1(batch_size: int, rounds: int) -> None:
    """conv1 (1 input channel, 32 3x3 filters, bf16) forward, ReLU and filter gradient, three ways:
    TensorFlow's convolution (oneDNN), and a matmul over 3x3 patches made by extract_patches or by
    nine shifted slices (conv1's filter gradient is a slow oneDNN kernel: about 25 GFLOP/s)."""
    import tensorflow as tf

    bf16 = tf.bfloat16
    x = tf.random.uniform((batch_size, 28, 28, 1))
    w, b = tf.Variable(tf.random.normal((3, 3, 1, 32)) * 0.3), tf.Variable(tf.zeros(32))
    g = tf.random.normal((batch_size, 28, 28, 32), dtype=bf16)

    def convolution(x, w):
        return tf.nn.conv2d(tf.cast(x, bf16), tf.cast(w, bf16), 1, "SAME")

    def by_matmul(patches, w):
        y = tf.matmul(tf.reshape(patches, (-1, 9)), tf.reshape(tf.cast(w, bf16), (9, 32)))
        return tf.reshape(y, (batch_size, 28, 28, 32))

    def extract(x, w):
        return by_matmul(tf.image.extract_patches(tf.cast(x, bf16), [1, 3, 3, 1], [1] * 4, [1] * 4, "SAME"), w)

    def shifted(x, w):
        padded = tf.pad(tf.cast(x, bf16), [[0, 0], [1, 1], [1, 1], [0, 0]])
        return by_matmul(tf.concat([padded[:, i:i + 28, j:j + 28] for i in range(3) for j in range(3)], -1), w)

    def loop(f):
        @tf.function
        def run(n):
            total = tf.zeros((3, 3, 1, 32))
            for _ in tf.range(n):
                with tf.GradientTape() as tape:
                    y = tf.nn.relu(tf.nn.bias_add(f(x, w), tf.cast(b, bf16)))
                    loss = tf.reduce_sum(tf.cast(y * g, tf.float32))
                total += tape.gradient(loss, w)
            return total
        return run

    ways = {"conv1_convolution": loop(convolution), "conv1_extract_patches": loop(extract),
            "conv1_shifted_slices": loop(shifted)}
    for name, seconds in time_loops(ways, rounds).items():
        print(json.dumps({"summary": "conv1", "way": name, "batch_size": batch_size,
                          "us_per_step": round(seconds * 1e6)}), flush=True)


def profile(batch_size: int, precision: str, batchnorm: bool, top: int = 16) -> None:
    """Where a steady step's time goes: TensorFlow's profiler over 640 steps (after a warm-up epoch),
    each op's time summed by op type (both inter-op threads together, so the total exceeds the wall
    time when ops overlap), in microseconds per step; one JSON line per op type, largest first."""
    import collections
    import glob
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from kerascnn.training.compiling import compile_for_training
    from kerascnn.training.config import TrainConfig

    model = training_model(batchnorm, precision)
    compile_for_training(model, TrainConfig(out_dir="unused", batch_size=batch_size), 3000)
    data = batches(batch_size)
    model.fit(data, epochs=1, verbose=0)
    clock = Clock()
    model.fit(data, epochs=1, verbose=0, callbacks=[clock])
    wall = clock.seconds / (CHUNK * 10)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        model.fit(data, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb").read())
    seconds, count = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the executor's threads: the ops themselves
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" in name and "::" not in name:  # "scope/op_name:OpType", not the executor's own events
                    op = name.rsplit(":", 1)[1]
                    seconds[op] += event.duration_ps / 1e12
                    count[op] += 1
    steps = CHUNK * 10
    total = sum(seconds.values())
    for op, s in seconds.most_common(top):
        print(json.dumps({"summary": "profile", "batch_size": batch_size, "precision": precision,
                          "batchnorm": batchnorm, "op": op, "us_per_step": round(s / steps * 1e6, 1),
                          "per_step": round(count[op] / steps, 2), "share": round(s / total, 3)}), flush=True)
    print(json.dumps({"summary": "profile_total", "batch_size": batch_size, "precision": precision,
                      "batchnorm": batchnorm, "ops_us_per_step": round(total / steps * 1e6),
                      "wall_us_per_step_unprofiled": round(wall * 1e6)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=8, help="alternated rounds of 10 chunks each")
    parser.add_argument("--ablate", action="store_true", help="batch norm's parts, each removed in turn")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16", help="with --ablate and --profile")
    parser.add_argument("--fc1", action="store_true", help="fc1's Adam, casts and matmuls alone (bf16)")
    parser.add_argument("--conv1", action="store_true", help="conv1 as a convolution or as a matmul over patches")
    parser.add_argument("--profile", action="store_true",
                        help="where a step's time goes, by op type (TensorFlow's profiler; --precision, --batchnorm)")
    parser.add_argument("--batchnorm", action="store_true", help="with --profile: the network with batch norm")
    parser.add_argument("--pool-first", action="store_true",
                        help="the plain network's ReLU after its pool (the training model's) or before it")
    args = parser.parse_args()
    choose_kernels()  # as the CLI does, before TensorFlow starts (in this process)
    print(json.dumps({"machine": machine()}), flush=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    for batch_size in args.batch_sizes:
        if args.profile:
            profile(batch_size, args.precision, args.batchnorm)
            continue
        if args.fc1 or args.conv1:  # the parts alone, no training model
            for part, wanted in ((fc1, args.fc1), (conv1, args.conv1)):
                if wanted:
                    part(batch_size, args.rounds)
            continue
        if args.pool_first:
            builders = {f"no batchnorm, {p}, {'pool then ReLU' if first else 'ReLU then pool'}":
                        (lambda p=p, first=first: training_model(False, p, pool_first=first))
                        for p in ("bf16", "fp32") for first in (False, True)}
            alternate(builders, batch_size, args.rounds)
            continue
        if args.ablate:
            p = args.precision
            builders = {f"batchnorm, {p}": lambda: training_model(True, p),
                        **{f"batchnorm without {part}, {p}": (lambda part=part: training_model(True, p, part))
                           for part in ("fc1", "conv", "moving")},
                        f"no batchnorm, {p}": lambda: training_model(False, p)}
            alternate(builders, batch_size, args.rounds)
            continue
        builders = {f"{'batchnorm' if bn else 'no batchnorm'}, {p}": (lambda bn=bn, p=p: training_model(bn, p))
                    for p in ("bf16", "fp32") for bn in (False, True)}
        times = alternate(builders, batch_size, args.rounds)
        for p in ("bf16", "fp32"):  # per round (side by side), then the median
            ratios = [b / a for a, b in zip(times[f"no batchnorm, {p}"], times[f"batchnorm, {p}"])]
            print(json.dumps({"summary": "batchnorm_step", "batch_size": batch_size, "precision": p,
                              "step_ratio": round(statistics.median(ratios), 3)}), flush=True)


if __name__ == "__main__":
    main()
