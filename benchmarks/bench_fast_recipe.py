"""Time to 99%: levers for `kerascnn train --recipe fast`, each over 3 seeds, chosen on validation.

    python benchmarks/bench_fast_recipe.py --name "batch 256, warmup_cosine" --set batch_size=256 \
        --set lr_schedule=warmup_cosine --set lr=3e-3 --set epochs=1
    python benchmarks/bench_fast_recipe.py --name "fast, test" --recipe fast --test   # once, at the end

Every run is a fresh process calling `train(TrainConfig.from_recipe(recipe, **sets))` (as `kerascnn
train` does), seeds one after another. Prints one JSON line per run and a summary line (means over the
seeds of the validation accuracy and of metrics.json's train_seconds), which --record appends to
benchmarks/results/fast_recipe_cpu2.jsonl. Without --test no test accuracy is printed or recorded:
the levers are chosen on the validation split only; --test is for the chosen recipe.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "fast_recipe_cpu2.jsonl"

RUN = r"""
import json, os, sys, tempfile
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from kerascnn.training.config import TrainConfig
from kerascnn.training.fit import train
recipe, fields = sys.argv[1], json.loads(sys.argv[2])
with tempfile.TemporaryDirectory() as out:
    m = train(TrainConfig.from_recipe(recipe, out_dir=out, **fields), verbose=0).metrics
print(json.dumps({k: m[k] for k in ("val_accuracy", "test_accuracy", "train_seconds", "epoch_seconds", "epochs",
                                    "batch_size", "lr", "lr_schedule", "warmup", "label_smoothing", "precision")}))
"""


def run(recipe: str, fields: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", RUN, recipe, json.dumps(fields)], cwd=ROOT, capture_output=True,
                          text=True, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"run failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the lever, as the results name it")
    parser.add_argument("--recipe", default="assignment")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="a TrainConfig field")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--test", action="store_true", help="also report test accuracy (the chosen recipe only)")
    parser.add_argument("--record", action="store_true", help=f"append the summary to {RESULTS.name}")
    args = parser.parse_args()
    fields = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    runs = []
    for seed in args.seeds:
        r = run(args.recipe, fields | {"seed": seed})
        if not args.test:
            del r["test_accuracy"]
        runs.append(r | {"seed": seed})
        print(json.dumps(runs[-1]), flush=True)
    first = runs[0]
    summary = {"lever": args.name, "recipe": args.recipe, "fields": fields,
               **{k: first[k] for k in ("epochs", "batch_size", "lr", "lr_schedule", "warmup", "label_smoothing",
                                        "precision")},
               "seeds": args.seeds, "val_accuracy_mean": round(statistics.mean(r["val_accuracy"] for r in runs), 4),
               "val_accuracy": [round(r["val_accuracy"], 4) for r in runs],
               "train_seconds_mean": round(statistics.mean(r["train_seconds"] for r in runs), 2),
               "train_seconds": [r["train_seconds"] for r in runs], "cpus": os.cpu_count()}
    if args.test:
        summary |= {"test_accuracy_mean": round(statistics.mean(r["test_accuracy"] for r in runs), 4),
                    "test_accuracy": [round(r["test_accuracy"], 4) for r in runs]}
    print(json.dumps(summary), flush=True)
    if args.record:
        with RESULTS.open("a") as f:
            f.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
