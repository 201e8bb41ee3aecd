"""Plain against lucid-style feature visualisation on an RGB model: the activation reached and the
high-frequency share of the images, per layer and for the classes.

    python benchmarks/bench_lucid.py                       # trains the RGB model, then both styles
    python benchmarks/bench_lucid.py --train-steps 600 --save benchmarks/results/lucid_amd_dec6.jsonl

No RGB weights can be downloaded here (and an untrained network's features mean nothing), so the model
is a small RGB CNN (conv 16 -> conv 32 -> pool -> conv 32 -> global average -> 4 logits) trained in the
benchmark on synthetic coloured 32x32 images whose class is a colour and an orientation of stripes
(red horizontal, green vertical, blue diagonal, yellow anti-diagonal; random frequency, phase, contrast
and noise): features that need colour and orientation, so that lucid's colour decorrelation is used.

For each convolution layer (all its filters) and for the classes' logits, `kc.filters(model, data,
maximize=True, style="both")` (kerascnn.experiments.maximize): plain's keras-io ascent and lucid's,
each with its default steps. Prints one JSON line per layer, with the host (CPU model and flags):

  activation_plain / activation_lucid   the mean objective (inner activation, or logit) on the final
                                        image in [0, 1] pixels, untransformed (plain's clipped to [0, 1])
  ratio                                 lucid / plain (the goal: >= 0.8)
  high_frequency_plain / _lucid         the mean share of the images' spectral energy above half the
                                        Nyquist frequency (kerascnn.experiments.lucid.high_frequency_share)
  filters_lucid_at_least_80             how many units reach 80% of plain's own activation
  seconds                               wall time of both styles (for scale only, not a speed claim)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosts import machine  # noqa: E402  (the CPU, its flags and kernels; no TensorFlow)
from kerascnn.cpu import choose_kernels  # noqa: E402

SIDE, CLASSES = 32, 4
COLOURS = np.array([[1.0, 0.15, 0.1], [0.1, 0.9, 0.2], [0.15, 0.2, 1.0], [0.95, 0.9, 0.1]])
ANGLES = np.array([0.0, np.pi / 2, np.pi / 4, -np.pi / 4])


def coloured_stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 32, 32, 3) float32 images in [0, 1] and their labels: stripes of the class's colour and angle."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    y, x = np.mgrid[:SIDE, :SIDE].astype(np.float64)
    images = np.empty((n, SIDE, SIDE, 3), np.float32)
    for i, k in enumerate(labels):
        angle = ANGLES[k] + rng.normal(0, 0.1)
        freq = rng.uniform(0.08, 0.2)
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (x * np.sin(angle) + y * np.cos(angle)) + rng.uniform(0, 2 * np.pi))
        colour = np.clip(COLOURS[k] + rng.normal(0, 0.1, 3), 0, 1)
        background = rng.uniform(0, 0.4, 3)
        image = background + rng.uniform(0.5, 1.0) * wave[..., None] * (colour - background)
        images[i] = np.clip(image + rng.normal(0, 0.05, image.shape), 0, 1)
    return images, labels


def train(steps: int, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(x), name="rgb_stripes")
    model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x_train, y_train = coloured_stripes(steps * 32, seed=1)
    model.fit(x_train, y_train, batch_size=32, epochs=1, verbose=0)
    x_test, y_test = coloured_stripes(512, seed=2)
    return model, float(model.evaluate(x_test, y_test, verbose=0)[1])


def main() -> None:
    choose_kernels()  # as the CLI does, before TensorFlow starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=600, help="training steps of 32 images")
    parser.add_argument("--save", default=None, help="also append the JSON lines to this file")
    args = parser.parse_args()

    import kerascnn as kc

    host = machine()
    begin = time.perf_counter()
    model, accuracy = train(args.train_steps)
    trained = time.perf_counter() - begin
    data, names = coloured_stripes(64, seed=3), ["red", "green", "blue", "yellow"]
    lines = []
    for layer in ["conv1", "conv2", "conv3", None]:
        chosen = {"layer": layer} if layer else {"classes": "all"}
        begin = time.perf_counter()
        result = kc.filters(model, data, maximize=True, style="both", class_names=names, progress=False, **chosen)
        seconds = time.perf_counter() - begin
        plain, lucid = result.runs["plain"], result.runs["lucid"]
        own = lucid.measured / np.where(plain.measured > 0, plain.measured, np.inf)
        record = {"measure": "lucid_vs_plain", "model": model.name, "test_accuracy": round(accuracy, 4),
                  "train_seconds": round(trained, 1), "layer": layer or "logits (classes)",
                  "units": len(result.units), "steps_plain": plain.steps, "steps_lucid": lucid.steps,
                  "activation_plain": round(float(plain.measured.mean()), 4),
                  "activation_lucid": round(float(lucid.measured.mean()), 4),
                  "ratio": round(float(lucid.measured.mean() / plain.measured.mean()), 3),
                  "filters_lucid_at_least_80": int((own >= 0.8).sum()),
                  "high_frequency_plain": round(float(plain.high_frequency.mean()), 4),
                  "high_frequency_lucid": round(float(lucid.high_frequency.mean()), 4),
                  "seconds": round(seconds, 1)} | host
        print(json.dumps(record), flush=True)
        lines.append(record)
        if os.environ.get("BENCH_LUCID_FIGURES"):   # a folder: the comparison figures, to look at
            from kerascnn import plots

            folder = Path(os.environ["BENCH_LUCID_FIGURES"])
            folder.mkdir(parents=True, exist_ok=True)
            plots.maximize_styles(result.raw).savefig(folder / f"{result.name}.png", dpi=80)
    if args.save:
        with open(args.save, "a") as out:
            out.writelines(json.dumps(r) + "\n" for r in lines)


if __name__ == "__main__":
    main()
