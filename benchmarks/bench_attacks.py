"""Speed of the adversarial attacks (kerascnn.attacks) with the pretrained model, on this machine.

    python benchmarks/bench_attacks.py                  # steps/s of each attack, and the commands' own runs
    python benchmarks/bench_attacks.py --steps 500 --repeats 5 --count 6

Prints one JSON line per measurement:

  kind "steps"   gradient steps per second of each attack's batch with its default optimizer and no
                 early stop (nontargeted and targeted: 10 images; noise: --count images), after a
                 warm-up call that compiles; the median of --repeats runs of --steps steps. For the
                 nontargeted batch, both optimizers and two loops: "while_loop" (what the library does:
                 chunks of steps in one compiled tf.while_loop) and "python" (the compiled step called
                 once per step from Python), the measurement behind that choice.
  kind "attack"  each attack as the command runs it with its defaults (early stop included), first
                 call (compilation included) and a second call; steps run and successes.
  kind "command" `kerascnn attack nontargeted` as a user runs it (a fresh process: TensorFlow's
                 import, loading the model, compiling, the attack, the figure and files), wall time.

The figures depend on what else the machine is doing: run it while nothing else is busy.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def time_steps(model, start, targets, steps: int, repeats: int, optimizer: str, anchor=None,
               beta: float = 0.0) -> float:
    """Median seconds of `steps` library steps (no early stop), after a compiling warm-up."""
    from kerascnn import attacks

    return median_seconds(lambda n: attacks._optimise(model, start, targets, steps=n, lr=0.01, confidence=None,
                                                      clip=True, optimizer=optimizer, anchor=anchor, beta=beta,
                                                      check_every=20), steps, repeats)


def median_seconds(run, steps: int, repeats: int) -> float:
    """Median seconds of run(steps) over `repeats` calls, after run(20) has compiled everything."""
    run(20)
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        run(steps)
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def time_python_loop(model, start, targets, steps: int, repeats: int, optimizer: str) -> float:
    """The same steps with the compiled step called from Python once per step (host sync every 20)."""
    import numpy as np
    import tensorflow as tf

    from kerascnn import attacks

    step, _ = attacks._compiled(model, optimizer)
    x = tf.constant(start)
    constants = (tf.constant(targets, tf.int32), tf.zeros_like(x), tf.constant(0.0), tf.constant(0.01),
                 tf.constant(-1.0), tf.constant(0.0), tf.constant(1.0))

    def run(n):
        state = (x, tf.zeros_like(x), tf.zeros_like(x), tf.zeros([len(start)], tf.int32),
                 tf.zeros([len(start)], tf.bool))
        for i in range(n):
            state = step(*state, *constants)
            if i % 20 == 19:
                int(tf.reduce_sum(tf.cast(state[4], tf.int32)))
        return np.asarray(state[0])

    return median_seconds(run, steps, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a .keras model (default: the pretrained one)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $TFDS_DATA_DIR)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--count", type=int, default=6, help="noise attack batch (its --count)")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from kerascnn import attacks, data
    from kerascnn.outputs import store

    model = store.load_model(args.model)
    images, labels = data.load_test(args.data_dir)
    guide = images[data.pick(labels, digit=7)]
    sources = images[data.first_of_each_class(labels, [c for c in range(10) if c != 4][:args.count])]
    ten = np.arange(10)
    noise_start = attacks.start_noise(10, 0)
    machine = {"cpus": os.cpu_count(), "tensorflow": tf.__version__,
               "devices": [d.device_type for d in tf.config.list_physical_devices()],
               "load_average_1min": round(os.getloadavg()[0], 2)}

    def steps_record(attack, batch, loop, optimizer, seconds):
        emit({"kind": "steps", "attack": attack, "batch": batch, "loop": loop, "optimizer": optimizer,
              "steps": args.steps,
              "seconds": round(seconds, 3), "steps_per_second": round(args.steps / seconds, 1),
              "image_steps_per_second": round(batch * args.steps / seconds, 1)} | machine)

    n = args.steps, args.repeats
    steps_record("nontargeted", 10, "while_loop", "sign", time_steps(model, noise_start, ten, *n, "sign"))
    steps_record("nontargeted", 10, "python", "sign", time_python_loop(model, noise_start, ten, *n, "sign"))
    steps_record("nontargeted", 10, "while_loop", "adam", time_steps(model, noise_start, ten, *n, "adam"))
    steps_record("nontargeted", 10, "python", "adam", time_python_loop(model, noise_start, ten, *n, "adam"))
    steps_record("targeted", 10, "while_loop", "adam",
                 time_steps(model, noise_start, ten, *n, "adam", anchor=np.repeat(guide[None], 10, axis=0),
                            beta=100.0))
    steps_record("noise", len(sources), "while_loop", "sign",
                 time_steps(model, sources, np.full(len(sources), 4), *n, "sign", anchor=sources))

    # The attacks as the commands run them (defaults, early stop), in a fresh model so that the
    # first call includes the compilation a user waits for.
    fresh = store.load_model(args.model)
    runs = {  # the library's defaults are the commands' defaults
        "nontargeted": lambda: attacks.nontargeted(fresh, range(10)),
        "targeted": lambda: attacks.targeted(fresh, guide),
        "noise": lambda: attacks.noise(fresh, sources, 4),
    }
    for name, call in runs.items():
        seconds = []
        for _ in range(2):
            begin = time.perf_counter()
            result = call()
            seconds.append(time.perf_counter() - begin)
        emit({"kind": "attack", "attack": name, "batch": len(result.images), "steps_run": result.steps_run,
              "successes": int(result.success.sum()), "first_call_seconds": round(seconds[0], 3),
              "second_call_seconds": round(seconds[1], 3),
              "steps_per_second_second_call": round(result.steps_run / seconds[1], 1) if seconds[1] else math.nan}
             | machine)

    kerascnn = Path(sys.executable).with_name("kerascnn")
    command = [str(kerascnn)] if kerascnn.exists() else [sys.executable, "-c", "from cli.main import cli; cli()"]
    for _ in range(2):
        with tempfile.TemporaryDirectory() as out:
            begin = time.perf_counter()
            done = subprocess.run([*command, "attack", "nontargeted", "--out", out]
                                  + (["--model", args.model] if args.model else []),
                                  capture_output=True, text=True)
            seconds = time.perf_counter() - begin
        emit({"kind": "command", "command": "kerascnn attack nontargeted", "returncode": done.returncode,
              "wall_seconds": round(seconds, 2)} | machine)


if __name__ == "__main__":
    main()
