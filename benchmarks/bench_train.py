"""Training speed of `kerascnn train` beside plain PyTorch and plain Keras, on this machine.

    python benchmarks/bench_train.py                      # the comparison (issue: 3 pairs, batch 16 and 64)
    python benchmarks/bench_train.py --levers             # each speed lever on and off, same way
    python benchmarks/bench_train.py --batchnorm --batch-sizes 16   # an epoch with batch norm over one without
    python benchmarks/bench_train.py --inference          # evaluation and one occlusion map
    python benchmarks/bench_train.py --trees /tmp/before . --set batchnorm=true   # a change, before/after
    python benchmarks/bench_train.py --kernels eigen,onednn,onednn_avx2   # TensorFlow's CPU kernels (hosts.py)
    (attack steps per second: benchmarks/bench_attacks.py)

Prints one JSON line per run and one summary line per comparison. Every run is a fresh process
(its start-up, tracing and first epoch included, as a user would see), and the runs alternate
A B C A B C... so that a noisy machine slows all of them alike. Figures are medians.

The references (../shared/bench) train on all 60,000 training images; `kerascnn train` holds 5,000
out for validation and also runs its validation passes inside the epoch. So the ratios compare time
per training image (ref images/s over ours): an epoch of ours on 60,000 images would take
ratio x the reference's epoch. Lower is better; the goal is <= 0.7.
PyTorch is needed for its reference (pip install torch==2.13.0); it is not a project dependency.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hosts import KERNELS, ROOT, environment, host, machine, parse_kernels, torch_variant  # noqa: F401 (bench_step's machine)

BENCH = ROOT.parent / "shared" / "bench"
IDX = ROOT.parent / "shared" / "datasets" / "mnist-idx"

RUN_KERASCNN = r"""
import json, os, sys, tempfile, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
try:
    from kerascnn.training.config import TrainConfig
    from kerascnn.training.fit import train
except ImportError:  # a checkout (--trees) from before the layout of 2026-12-03
    from kerascnn.training import TrainConfig, train
overrides = json.loads(sys.argv[1])
start = time.perf_counter()
with tempfile.TemporaryDirectory() as out:
    r = train(TrainConfig(out_dir=out, **overrides), verbose=0)
call = time.perf_counter() - start
m = r.metrics
seconds = m["epoch_seconds"][0]
print(json.dumps({"impl": "kerascnn", "batch_size": m["batch_size"], "epoch_seconds": seconds,
                  "images_per_second": round(m["train_images"] / seconds, 1),
                  "test_accuracy": round(m["test_accuracy"], 4), "precision": m["precision"],
                  "whole_call_seconds": round(call, 2), "train_images": m["train_images"],
                  "kernels": m.get("cpu", {}).get("kernels")}), flush=True)
"""


def run_once(kind: str, batch_size: int, overrides: dict | None = None, env: dict | None = None,
             tree: Path | None = None) -> dict:
    """One fresh process training one epoch; returns its JSON line as a dict. tree: a checkout of
    the project whose kerascnn runs instead of this one (kind "kerascnn" only)."""
    variables = environment({"TF_CPP_MIN_LOG_LEVEL": "3"}, env, {"PYTHONPATH": str(tree)} if tree else None)
    if kind == "kerascnn":
        args = [sys.executable, "-c", RUN_KERASCNN,
                json.dumps({"epochs": 1, "batch_size": batch_size, "data_dir": str(IDX)} | (overrides or {}))]
    else:
        script = {"torch": "torch_reference.py", "keras": "keras_reference.py"}[kind]
        args = [sys.executable, str(BENCH / script), "--batch-size", str(batch_size), "--epochs", "1"]
    done = subprocess.run(args, cwd=BENCH if kind != "kerascnn" else (tree or ROOT), env=variables,
                          capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def alternate(variants: dict, batch_size: int, rounds: int) -> dict:
    """Runs every variant `rounds` times, interleaved; returns name -> list of results."""
    results = {name: [] for name in variants}
    for r in range(rounds):
        for name, (kind, overrides, env, *tree) in variants.items():
            result = run_once(kind, batch_size, overrides, env, *tree) | {"variant": name, "round": r}
            results[name].append(result)
            print(json.dumps(result), flush=True)
    return results


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def compare(args) -> None:
    overrides = settings(args)
    for batch_size in args.batch_sizes:
        variants = {"kerascnn": ("kerascnn", overrides, {}), "torch": ("torch", None, None),
                    "keras": ("keras", None, None)}
        if args.skip_torch:
            del variants["torch"]
        if args.skip_keras:
            del variants["keras"]
        results = alternate(variants, batch_size, args.rounds)
        ours = results["kerascnn"]
        summary = {"summary": "train", "batch_size": batch_size, "rounds": args.rounds, "overrides": overrides,
                   "host": host(),
                   "kerascnn_images_per_second": median(ours, "images_per_second"),
                   "kerascnn_epoch_seconds": median(ours, "epoch_seconds"),
                   "kerascnn_test_accuracy": median(ours, "test_accuracy")}
        for ref in [v for v in variants if v != "kerascnn"]:
            theirs = results[ref]
            # ratio of time per image in each round (they ran side by side), then the median
            ratios = [t["images_per_second"] / o["images_per_second"] for o, t in zip(ours, theirs)]
            summary |= {f"{ref}_images_per_second": median(theirs, "images_per_second"),
                        f"{ref}_epoch_seconds": median(theirs, "epoch_seconds"),
                        f"{ref}_test_accuracy": median(theirs, "test_accuracy"),
                        f"ratio_vs_{ref}": round(statistics.median(ratios), 3)}
        print(json.dumps(summary), flush=True)


LEVERS = {
    # name: (TrainConfig overrides, environment)
    "plain (fp32, steps_per_execution 1, Keras Adam)": ({"precision": "fp32", "steps_per_execution": 1,
                                                         "optimizer": "adam"}, {}),
    "+ steps_per_execution 64": ({"precision": "fp32", "optimizer": "adam"}, {}),
    "+ fused Adam": ({"precision": "fp32"}, {}),
    "+ mixed_bfloat16 (the default)": ({}, {}),
    "default + XLA jit_compile": ({"jit_compile": True}, {}),
    "default, inter-op threads 1": ({}, {"TF_NUM_INTEROP_THREADS": "1"}),
    "default, oneDNN off": ({}, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "batch norm, bf16 (the default)": ({"batchnorm": True}, {}),
    "batch norm, fp32": ({"batchnorm": True, "precision": "fp32"}, {}),
    "batch norm, bf16, Keras' own layer": ({"batchnorm": True, "fused_batchnorm": False}, {}),
    "batch norm, fp32, Keras' own layer": ({"batchnorm": True, "precision": "fp32", "fused_batchnorm": False}, {}),
}

#: `--batchnorm`: an epoch with batch norm over one without, per precision, fused kernels and Keras' layer
BATCHNORM = {"bf16": ("+ mixed_bfloat16 (the default)", "batch norm, bf16 (the default)",
                      "batch norm, bf16, Keras' own layer"),
             "fp32": ("+ fused Adam", "batch norm, fp32", "batch norm, fp32, Keras' own layer")}


def batchnorm(args) -> None:
    """Epoch time with batch norm over without, alternated: the fused layer and Keras' own."""
    names = [name for trio in BATCHNORM.values() for name in (trio[:2] if args.fused_only else trio)]
    for batch_size in args.batch_sizes:
        variants = {name: ("kerascnn", LEVERS[name][0], LEVERS[name][1]) for name in names}
        results = alternate(variants, batch_size, args.rounds)
        for precision, (plain, fused, own) in BATCHNORM.items():
            summary = {"summary": "batchnorm", "batch_size": batch_size, "precision": precision, "host": host()}
            for label, name in (("fused", fused),) + ((("keras_layer", own),) if not args.fused_only else ()):
                # per round (the runs of one round ran side by side), then the median
                ratios = [b["epoch_seconds"] / a["epoch_seconds"] for a, b in zip(results[plain], results[name])]
                summary |= {f"{label}_epoch_ratio": round(statistics.median(ratios), 3),
                            f"{label}_epoch_seconds": median(results[name], "epoch_seconds"),
                            f"{label}_test_accuracy": median(results[name], "test_accuracy")}
            summary |= {"no_batchnorm_epoch_seconds": median(results[plain], "epoch_seconds")}
            print(json.dumps(summary), flush=True)


def levers(args) -> None:
    names = args.lever or list(LEVERS)
    for batch_size in args.batch_sizes:
        variants = {name: ("kerascnn", LEVERS[name][0], LEVERS[name][1]) for name in names}
        results = alternate(variants, batch_size, args.rounds)
        for name in names:
            print(json.dumps({"summary": "lever", "batch_size": batch_size, "variant": name,
                              "images_per_second": median(results[name], "images_per_second"),
                              "epoch_seconds": median(results[name], "epoch_seconds"),
                              "test_accuracy": median(results[name], "test_accuracy")}), flush=True)


def settings(args) -> dict:
    """--set FIELD=VALUE ... as TrainConfig overrides."""
    overrides = {}
    for item in args.set:
        field, equals, value = item.partition("=")
        if not (field and equals):
            raise SystemExit(f"--set takes FIELD=VALUE, got {item!r}")
        try:
            overrides[field] = json.loads(value)  # true, 64, null ...
        except ValueError:
            overrides[field] = value  # a plain word: fp32, cosine ...
    return overrides


def trees(args) -> None:
    """The same epoch from several checkouts of the project (e.g. `git worktree add /tmp/before HEAD~1`),
    alternated: a change's before and after, measured side by side. The first tree is the baseline."""
    overrides = settings(args)
    paths = [Path(t).resolve() for t in args.trees]
    for path in paths:
        if not (path / "kerascnn" / "__init__.py").is_file():
            raise SystemExit(f"--trees: {path} is not a checkout of the project (no kerascnn/ in it)")
    for batch_size in args.batch_sizes:
        variants = {str(p): ("kerascnn", overrides, {}, p) for p in paths}
        results = alternate(variants, batch_size, args.rounds)
        base = results[str(paths[0])]
        for name, runs in results.items():
            ratios = [b["epoch_seconds"] / a["epoch_seconds"] for a, b in zip(base, runs)]
            print(json.dumps({"summary": "trees", "tree": name, "batch_size": batch_size, "overrides": overrides,
                              "epoch_seconds": median(runs, "epoch_seconds"),
                              "epoch_ratio_to_first": round(statistics.median(ratios), 3),
                              "test_accuracy": median(runs, "test_accuracy")}), flush=True)


def kernels(args) -> None:
    """One epoch under each of TensorFlow's kernel settings (hosts.KERNELS), alternated, with PyTorch on the
    same class of host (AVX2-limited beside the *_avx2 settings). fp32 unless --set precision=...: the
    recipe of a host without bf16, as AVX2 hosts are. Ratios: per round (side by side), then the median."""
    overrides, torch_of = {"precision": "fp32"} | settings(args), {n: torch_variant(n) for n in KERNELS}
    for batch_size in args.batch_sizes:
        variants = {name: ("kerascnn", overrides, KERNELS[name][0]) for name in args.kernels}
        variants |= {} if args.skip_torch else {torch_of[n]: ("torch", None, KERNELS[n][1]) for n in args.kernels}
        results = alternate(variants, batch_size, args.rounds)
        first = results[args.kernels[0]]
        for name in args.kernels:
            runs = results[name]
            summary = {"summary": "kernels", "kernels": name, "batch_size": batch_size, "overrides": overrides,
                       "env": {k: v for k, v in KERNELS[name][0].items() if v is not None}, "host": host(),
                       "kernels_recorded": runs[0].get("kernels"), "epoch_seconds": median(runs, "epoch_seconds"),
                       "images_per_second": median(runs, "images_per_second"), "test_accuracy": median(runs, "test_accuracy"),
                       f"epoch_ratio_to_{args.kernels[0]}": round(statistics.median(
                           b["epoch_seconds"] / a["epoch_seconds"] for a, b in zip(first, runs)), 3)}
            if not args.skip_torch:  # time per image, ours over PyTorch's
                theirs = results[torch_of[name]]
                summary |= {"torch": torch_of[name], "torch_images_per_second": median(theirs, "images_per_second"),
                            "ratio_vs_torch": round(statistics.median(
                                t["images_per_second"] / o["images_per_second"] for o, t in zip(runs, theirs)), 3)}
            print(json.dumps(summary), flush=True)


def inference(args) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    from kerascnn.attributions.patches import occlude
    from kerascnn.model.subject import load_keras
    from kerascnn.model.predict import predict_logits
    from kerascnn.data.tasks import Pick, Task, pick

    model = load_keras(None)  # the shipped cnn
    task = Task("mnist", str(IDX))
    images, _ = task.test()
    predict_logits(model, images[:1000])  # trace once
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        predict_logits(model, images)
        times.append(time.perf_counter() - start)
    print(json.dumps({"summary": "evaluate", "images": len(images), "batch_size": 1000,
                      "images_per_second": round(len(images) / statistics.median(times), 1)}), flush=True)
    seven = pick(task, Pick(class_name=7))
    times = []
    for _ in range(args.rounds + 1):
        start = time.perf_counter()
        occlude(model, seven.image, seven.label, patch=14, stride=1)
        times.append(time.perf_counter() - start)
    print(json.dumps({"summary": "occlusion_map", "patch": 14, "stride": 1,
                      "seconds_first": round(times[0], 3), "seconds": round(statistics.median(times[1:]), 3)}),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant (alternated)")
    parser.add_argument("--levers", action="store_true", help="measure each lever instead of the comparison")
    parser.add_argument("--lever", action="append", choices=list(LEVERS), help="only these levers")
    parser.add_argument("--batchnorm", action="store_true",
                        help="epoch time with batch norm over without (bf16 and fp32; fused layer and Keras' own)")
    parser.add_argument("--fused-only", action="store_true", help="with --batchnorm: the fused layer only")
    parser.add_argument("--inference", action="store_true", help="evaluation and occlusion-map speed")
    parser.add_argument("--trees", nargs="+", metavar="DIR",
                        help="one epoch from each of these checkouts of the project, alternated (before/after)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a TrainConfig field for every kerascnn run (JSON, or a plain word), "
                             "e.g. --set batchnorm=true --set precision=fp32")
    parser.add_argument("--kernels", type=parse_kernels, metavar="A,B,...",
                        help=f"one epoch under each TensorFlow kernel setting, PyTorch beside each: {', '.join(KERNELS)}")
    parser.add_argument("--skip-torch", action="store_true", help="no PyTorch installed: compare with Keras only")
    parser.add_argument("--skip-keras", action="store_true", help="compare with PyTorch only")
    args = parser.parse_args()
    print(json.dumps({"machine": machine()}), flush=True)
    if args.trees:
        trees(args)
    elif args.kernels:
        kernels(args)
    elif args.inference:
        inference(args)
    elif args.levers:
        levers(args)
    elif args.batchnorm:
        batchnorm(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
