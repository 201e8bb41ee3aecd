"""Do TensorFlow's CPU kernel settings change kerascnn's numbers? (issue 38: oneDNN on AVX2 hosts)

    python benchmarks/check_kernels.py                         # eigen, onednn, onednn_avx2; about 10 minutes
    python benchmarks/check_kernels.py --settings eigen,eigen_avx2,onednn_avx2 --name amd_dec6

Each setting (benchmarks/hosts.py: eigen is TF_ENABLE_ONEDNN_OPTS=0, onednn =1, onednn_avx2 =1 with
ONEDNN_MAX_CPU_ISA=AVX2, the kernels oneDNN runs on an AVX2-only CPU) runs every step in fresh processes:

    evaluate    `kerascnn evaluate --model saved_models/M --json` for cnn and cnn_bn, and the logits of
                the 10,000 test images (a helper process), to count the images whose prediction changes
    train       `kerascnn train --subset 3700 --val-size 500 --epochs 1 --precision fp32 --seed 0`:
                200 steps of 16 in fp32 (an AVX2 host's recipe), twice, so that run-to-run noise is known
    robustness  FGSM and PGD-40 on the first 200 test images at the default eps: what `kerascnn robustness
                --attack fgsm,pgd --count 200 --json` computes (experiments.robustness.run), in the helper
                so that each image's outcome is kept
    certify     `kerascnn certify --count 20 --json` (cnn_smooth, seed 0): each image's class, radius, p_lower

Every setting is compared with the first: how many numbers are identical, how far the others moved,
and which moved beyond the tolerance (|a - b| > tol * max(1, |a|), --tolerance 1e-4). Prints JSON
lines and writes them to benchmarks/results/kernels_check_<name>.jsonl; the first line is the host
(lscpu's model and flags, the kernels kerascnn chooses there).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from hosts import KERNELS, ROOT, environment, machine, parse_kernels

RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("cnn", "cnn_bn")
TRAIN = ["train", "--subset", "3700", "--val-size", "500", "--epochs", "1", "--batch-size", "16", "--precision",
         "fp32", "--seed", "0"]

HELPER = r"""
import json, sys
import numpy as np
from kerascnn.cpu import choose_kernels
choose_kernels()
from kerascnn import SAVED_MODELS
from kerascnn.experiments import robustness
from kerascnn.model.subject import Subject

arrays = {}
for name in sys.argv[2].split(","):
    subject = Subject.load(SAVED_MODELS / name)
    images, labels = subject.task.test()
    arrays["logits_" + name] = subject.logits(images)
result = robustness.run(Subject.load(SAVED_MODELS / "cnn"), robustness.Options(attacks=("fgsm", "pgd"), count=200))
arrays |= {"correct_" + attack: flags for attack, flags in result.correct.items()}
np.savez(sys.argv[1] + "/arrays.npz", **arrays)
with open(sys.argv[1] + "/robustness.json", "w") as f:
    json.dump(result.to_dict(), f)
"""


def run(args: list[str], env: dict, python: bool = False) -> str:
    """A fresh process (`kerascnn ARGS`, or `python -c ARGS...`); its stdout. Fails loudly."""
    command = [sys.executable, "-c", *args] if python else [sys.executable, "-c", "from cli.main import cli; cli()", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:3])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def weights(path: Path) -> np.ndarray:
    """A saved model's weights, flattened in a fixed order (read from the .keras zip, no TensorFlow)."""
    import h5py

    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
        found = []
        h5.visititems(lambda name, item: found.append((name, np.asarray(item, np.float64).ravel()))
                      if isinstance(item, h5py.Dataset) else None)
    return np.concatenate([values for _, values in sorted(found, key=lambda pair: pair[0])])


def one_setting(name: str, work: Path) -> dict:
    """Every step under kernel setting `name`: the numbers (JSON-able) and the arrays."""
    env = environment({"TF_CPP_MIN_LOG_LEVEL": "2"}, KERNELS[name][0])
    out = work / name
    out.mkdir()
    found = {"evaluate": {}, "train": [], "seconds": {}}
    begin = time.perf_counter()
    for model in MODELS:
        text = run(["evaluate", "--model", f"saved_models/{model}", "--json", "--out", str(out / f"evaluate_{model}")], env)
        found["evaluate"][model] = {k: v for k, v in json.loads(text).items() if k in ("accuracy", "loss",
                                                                                          "per_class_accuracy", "confusion")}
    found["seconds"]["evaluate"] = time.perf_counter() - begin
    begin = time.perf_counter()
    run([HELPER, str(out), ",".join(MODELS)], env, python=True)
    found["arrays"] = dict(np.load(out / "arrays.npz"))
    robustness = json.loads((out / "robustness.json").read_text())
    found["robustness"] = {"clean_accuracy": robustness["clean_accuracy"], "accuracy": robustness["accuracy"],
                           "eps": robustness["eps"]}
    found["seconds"]["helper"] = time.perf_counter() - begin
    for repeat in (0, 1):
        begin = time.perf_counter()
        folder = out / f"train_{repeat}"
        run([*TRAIN, "--out", str(folder)], env)
        metrics = json.loads((folder / "metrics.json").read_text())
        with open(folder / "history.csv") as f:
            last = list(csv.DictReader(f))[-1]
        found["train"].append({"test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"],
                               "train_loss": float(last["loss"]), "train_accuracy": float(last["accuracy"]),
                               "val_accuracy": metrics["val_accuracy"], "val_loss": metrics["val_loss"],
                               "steps": metrics["steps_per_epoch"], "cpu": metrics.get("cpu")})
        found["arrays"][f"weights_{repeat}"] = weights(folder / "model.keras")
        found["seconds"][f"train_{repeat}"] = time.perf_counter() - begin
    begin = time.perf_counter()
    certified = json.loads(run(["certify", "--count", "20", "--json", "--out", str(out / "certify")], env))
    found["certify"] = {k: certified[k] for k in ("accuracy", "abstained", "certified_accuracy", "prediction",
                                                    "radius", "p_lower")}
    found["seconds"]["certify"] = time.perf_counter() - begin
    return found


def flat(value, prefix: str = "") -> dict:
    """Nested dicts and lists of numbers -> {"a/b/0": number}."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(item, f"{prefix}{key}/").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flat(item, f"{prefix}{i}/").items()}
    return {prefix.rstrip("/"): value} if isinstance(value, (int, float)) and not isinstance(value, bool) else {}


def numbers(a, b, tolerance: float) -> dict:
    """How two results' numbers differ: counts, the largest change, those beyond the tolerance."""
    fa, fb = flat(a), flat(b)
    moved = {k: abs(fb[k] - fa[k]) for k in fa if k in fb and fb[k] != fa[k]}
    beyond = {k: d for k, d in moved.items() if d > tolerance * max(1.0, abs(fa[k]))}
    return {"numbers": len(fa), "identical": len(fa) - len(moved), "moved": len(moved),
            "max_abs_change": max(moved.values(), default=0.0),
            "beyond_tolerance": {k: float(f"{d:.3g}") for k, d in sorted(beyond.items(), key=lambda kv: -kv[1])[:12]}}


def arrays_compared(ref: dict, other: dict) -> dict:
    """Per-image comparisons: predictions and logits, robustness outcomes, trained weights."""
    out = {}
    for model in MODELS:
        a, b = ref[f"logits_{model}"], other[f"logits_{model}"]
        out[f"evaluate_{model}"] = {"images": len(a), "predictions_differ": int((a.argmax(1) != b.argmax(1)).sum()),
                                    "logits_identical": bool(np.array_equal(a, b)),
                                    "logits_max_abs_diff": float(np.abs(a - b).max()),
                                    "logits_scale": float(np.abs(a).max())}
    for key in [k for k in ref if k.startswith("correct_")]:
        a, b = ref[key], other[key]
        out[f"robustness_{key[8:]}"] = {"images": a.shape[1], "image_eps_pairs_differ": int((a != b).sum()),
                                        "images_differ_at_some_eps": int((a != b).any(axis=0).sum())}
    w = ref["weights_0"]
    out["train_weights"] = {"max_abs_diff": float(np.abs(other["weights_0"] - w).max()), "scale": float(np.abs(w).max()),
                            "identical": bool(np.array_equal(other["weights_0"], w))}
    return out


def compare(ref: dict, other: dict, tolerance: float) -> dict:
    certify_a, certify_b = ref["certify"], other["certify"]
    return {"evaluate": numbers(ref["evaluate"], other["evaluate"], tolerance),
            "train": numbers(ref["train"][0], other["train"][0], tolerance),
            "robustness": numbers(ref["robustness"], other["robustness"], tolerance),
            "certify": numbers(certify_a, certify_b, tolerance) | {
                "predictions_differ": int(sum(x != y for x, y in zip(certify_a["prediction"], certify_b["prediction"]))),
                "radii_differ": int(sum(x != y for x, y in zip(certify_a["radius"], certify_b["radius"])))},
            "per_image": arrays_compared(ref["arrays"], other["arrays"])}


def summary(lines: list[dict]) -> list[str]:
    """A sentence per setting and step: identical, or what moved and how far."""
    said = []
    for line in [x for x in lines if x["kind"] in ("diff", "repeat")]:
        if line["kind"] == "repeat":
            n = line["numbers"]
            said.append(f"{line['setting']}, training twice: {n['identical']}/{n['numbers']} numbers identical, "
                        f"weights {'identical' if line['weights_identical'] else 'max diff %.3g' % line['weights_max_abs_diff']}")
            continue
        head = f"{line['setting']} against {line['against']}"
        for step in ("evaluate", "train", "robustness", "certify"):
            n = line[step]
            said.append(f"{head}, {step}: {n['identical']}/{n['numbers']} numbers identical, largest change "
                        f"{n['max_abs_change']:.3g}, {len(n['beyond_tolerance'])} beyond tolerance")
        per = line["per_image"]
        said.append(f"{head}, per image: " + "; ".join(
            f"{key} {', '.join(f'{k} {v:.3g}' if isinstance(v, float) else f'{k} {v}' for k, v in value.items())}"
            for key, value in per.items()))
    return said


def lscpu() -> dict:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return {"lscpu_model": fields.get("Model name"), "lscpu_flags": fields.get("Flags", "").split()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=parse_kernels, default=parse_kernels("eigen,onednn,onednn_avx2"),
                        metavar="A,B,...", help=f"kernel settings, the first the reference: {', '.join(KERNELS)}")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="relative: |a - b| <= tol * max(1, |a|)")
    parser.add_argument("--name", default=None, help="results file kernels_check_NAME.jsonl (default: vendor_monDAY)")
    args = parser.parse_args()
    host = {"kind": "host", "date": time.strftime("%Y-%m-%d")} | lscpu() | machine()
    now = time.localtime()
    name = args.name or f"{str(host.get('cpu', 'cpu')).split()[0].lower()}_{time.strftime('%b', now).lower()}{now.tm_mday}"
    lines = [host]

    def say(line: dict) -> None:
        lines.append(line)
        print(json.dumps(line), flush=True)

    print(json.dumps(host), flush=True)
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for setting in args.settings:
            found[setting] = one_setting(setting, Path(tmp))
            f = found[setting]
            say({"kind": "setting", "setting": setting, "env": {k: v for k, v in KERNELS[setting][0].items() if v},
                 "evaluate": {m: {"accuracy": e["accuracy"], "loss": e["loss"]} for m, e in f["evaluate"].items()},
                 "train": f["train"], "robustness": f["robustness"],
                 "certify": {k: f["certify"][k] for k in ("accuracy", "abstained", "certified_accuracy")},
                 "seconds": {k: round(v, 1) for k, v in f["seconds"].items()}})
            repeat = numbers(f["train"][0], f["train"][1], args.tolerance)
            w0, w1 = f["arrays"]["weights_0"], f["arrays"]["weights_1"]
            say({"kind": "repeat", "setting": setting, "step": "train", "numbers": repeat,
                 "weights_identical": bool(np.array_equal(w0, w1)), "weights_max_abs_diff": float(np.abs(w0 - w1).max())})
    reference = args.settings[0]
    for setting in args.settings[1:]:
        say({"kind": "diff", "setting": setting, "against": reference, "tolerance": args.tolerance}
            | compare(found[reference], found[setting], args.tolerance))
    say({"kind": "summary", "against": reference, "tolerance": args.tolerance, "lines": summary(lines)})
    print("\n".join(lines[-1]["lines"]), file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"kernels_check_{name}.jsonl"
    temporary = path.with_suffix(".jsonl.tmp")
    temporary.write_text("".join(json.dumps(line) + "\n" for line in lines))
    temporary.replace(path)
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
