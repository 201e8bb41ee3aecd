"""Wall time and peak memory of the commands on a model of real size: a keras.applications network
(MobileNetV2 by default, no pretrained weights: the numbers do not depend on them) at 224 px with 5
classes, on a folder of 100 test images, fed as keras.applications feeds it (`--preprocess
mobilenet_v2`: pixels mapped to [-1, 1] outside the model).

    python benchmarks/bench_realsize.py                       # every command, one JSON line each
    python benchmarks/bench_realsize.py --only evaluate,occlude --size 96   # a quicker look

Each command runs as a user runs it (a fresh `kerascnn` process: TensorFlow's import, loading, the
work, the figures and files); the peak memory is that process's maximum resident set (wait4's
ru_maxrss). The first line describes the machine (`lscpu`'s model and flags). Run it while nothing
else is busy.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import machine  # noqa: E402

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
COMMANDS = {
    "evaluate": ["evaluate"],
    "occlude --map": ["occlude", "--index", "0", "--map"],
    "explain": ["explain", "--index", "0"],
    "robustness --count 100": ["robustness", "--count", "100"],
    "attack minimal --count 20": ["attack", "minimal", "--count", "20"],
    "report": ["report"],
}


def build(root: Path, size: int, family: str, test: int, labels: str = "predicted",
          preprocess: str | None = "mobilenet_v2") -> Path:
    """The image folder (a few training images per class, `test` test images) and the model file.

    labels "cycle": classes 0, 1, 2, ... in turn, which the untrained network mostly gets wrong, so the
    attacks have almost nothing to do (what the 2026-12-03 numbers measured); "predicted": each test
    image labelled with the network's own prediction, so every image is right to begin with, as most
    are for a trained model, and every attack does its full work.
    """
    import keras

    from kerascnn.data.folders import write_image_folder

    network = getattr(keras.applications, family)
    keras.utils.set_random_seed(0)
    model = network(input_shape=(size, size, 3), weights=None, classes=len(CLASSES))
    feed = getattr(keras.applications, preprocess).preprocess_input if preprocess else (lambda p: p / 255.0)
    rng = np.random.default_rng(0)
    # Freshly initialised, MobileNetV2's batch norms (mean 0, variance 1) let the features fade through
    # its 50-odd layers: the logits come out near 1e-11, every class ties, and an attack has nothing to
    # work on. One pass in training mode with momentum 0 sets each batch norm to the statistics of
    # random images, as a trained network's would be set by its data: logits of order 1.
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(feed(rng.integers(0, 256, (32, size, size, 3)).astype(np.float32)), training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    for split, n in (("train", 10), ("test", test)):
        images = rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)
        if labels == "predicted" and split == "test":
            classes = model.predict(feed(images.astype(np.float32)), verbose=0).argmax(axis=1)
        else:
            classes = np.arange(n) % len(CLASSES)
        write_image_folder(root / "data", images, classes, CLASSES, split)
    path = root / f"{family.lower()}.keras"
    model.save(path)
    return path


def run(args: list[str], env: dict) -> dict:
    """One `kerascnn` command: wall seconds, peak resident MB, exit code, the last line it printed."""
    import subprocess

    begin = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([sys.executable, "-c", "from cli.main import cli; cli()", *args], stdout=out, stderr=subprocess.STDOUT,
                                   env=env, cwd=Path(__file__).resolve().parent.parent)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - begin
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
    return {"seconds": round(seconds, 1), "peak_mb": round(usage.ru_maxrss / 1024), "exit": process.returncode,
            "last_line": lines[-1][:200] if lines else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", default="MobileNetV2", help="a keras.applications network")
    parser.add_argument("--preprocess", default="mobilenet_v2", help="its --preprocess name")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--test", type=int, default=100, help="test images in the folder")
    parser.add_argument("--only", default=None, help="comma-separated command names (default: all)")
    parser.add_argument("--labels", default="predicted", choices=["predicted", "cycle"],
                        help="test labels: the network's own predictions (every image right: the attacks' full "
                             "work) or classes in turn (mostly wrong: the 2026-12-03 setting)")
    parser.add_argument("--build-into", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_into:  # the child that builds: TensorFlow and the model stay out of the parent
        print(build(Path(args.build_into), args.size, args.family, args.test, args.labels, args.preprocess))
        return
    chosen = list(COMMANDS) if args.only is None else [c for c in COMMANDS if c.split()[0] in args.only.split(",")]
    print(json.dumps({"kind": "machine"} | machine()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # Built in a child process: a child's peak memory (wait4's ru_maxrss) starts from its parent's at
        # the fork, so a parent holding TensorFlow and the network (3.6 GB after the calibration) would
        # be counted in every command's peak.
        import subprocess

        built = subprocess.run([sys.executable, __file__, "--build-into", str(root), "--size", str(args.size),
                                "--family", args.family, "--test", str(args.test), "--labels", args.labels,
                                "--preprocess", args.preprocess], capture_output=True, text=True, check=True,
                               env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"})
        model = Path(built.stdout.strip().splitlines()[-1])
        env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}
        for name in chosen:
            common = ["--model", str(model), "--data-dir", str(root / "data"), "--preprocess", args.preprocess]
            out = ["--out", str(root / "out" / name.split()[0])]
            result = run([*COMMANDS[name], *common, *out], env)
            print(json.dumps({"kind": "command", "command": name, "model": args.family, "size": args.size,
                              "test_images": args.test, "labels": args.labels} | result), flush=True)


if __name__ == "__main__":
    main()
