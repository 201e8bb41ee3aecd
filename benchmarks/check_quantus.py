"""Do kerascnn's explanation metrics agree with Quantus 0.6 on the shipped cnn? (issue 35)

    pip install --target /tmp/qsite --no-deps quantus==0.6.0 pandas opencv-python-headless scikit-learn \
        joblib threadpoolctl cachetools cloudpickle narwhals     # beside the project's pins, changing none
    PYTHONPATH=/tmp/qsite python benchmarks/check_quantus.py [--count 20 --robust 4]

Quantus is not a dependency: its installation adds pandas, OpenCV and scikit-learn to the environment,
so this check runs where it is installed (a --target folder is enough). Same maps (kerascnn.attributions,
explaining the predicted class), same settings (Quantus' defaults but num_classes: the model's 10).
Deterministic metrics (sparseness, complexity, random-logit with the same off-class) must agree to 1e-4;
sampled ones (faithfulness correlation, max-/avg-sensitivity, local Lipschitz: independent draws on each
side) within sampling error: a paired comparison over the images, |mean(ours - quantus)| <= 3 s.e.
Quantus 0.6 normalises the maps of one call by their largest |value| over all of them (normalise_by_max
without axes, on the whole a_batch and on each batch of re-explained maps); kerascnn divides each map by
its own, as the papers do. The two coincide for one image per call, so Quantus is called image by image.
Prints one JSON line per (metric, method) and writes benchmarks/results/quantus_check.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="images of the non-robustness metrics")
    parser.add_argument("--robust", type=int, default=4, help="images of the robustness metrics")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import quantus

    from kerascnn.api.inputs import subject
    from kerascnn.attributions import gradients as attributions, metrics

    s = subject(None, None)
    model = s.logits_model
    x, _ = s.task.test()
    x = x[:args.count]
    y = s.logits(x).argmax(axis=1)
    layer = attributions.gradcam_layer(s, None)
    classes = s.logits(x[:1]).shape[-1]
    rows = []

    def explainer(method):
        settings = attributions.Settings(methods=(method,)).check()

        def explain_func(model, inputs, targets, **_):     # (N, H, W, C) in, (N, H, W) out
            images = np.asarray(inputs, np.float32).reshape((-1,) + x.shape[1:])
            return attributions.explain(model, images, np.asarray(targets), settings, layer).maps[method]
        return explain_func

    def record(metric, method, ours, theirs, exact):
        ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
        diff = ours - theirs
        bound = 1e-4 if exact else 3 * diff.std(ddof=1) / np.sqrt(len(diff)) + 1e-9
        row = {"metric": metric, "method": method, "images": len(diff), "kerascnn": round(float(ours.mean()), 5),
               "quantus": round(float(theirs.mean()), 5), "mean_difference": round(float(diff.mean()), 6),
               "bound": round(float(bound), 6), "agree": bool(abs(diff.mean()) <= bound)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    common = dict(disable_warnings=True, display_progressbar=False)

    def per_image(metric, x_batch, y_batch, a_batch, **kw):
        return np.concatenate([np.ravel(metric(model=model, x_batch=x_batch[i:i + 1], y_batch=y_batch[i:i + 1],
                                               a_batch=a_batch[i:i + 1], channel_first=False, batch_size=1, **kw))
                               for i in range(len(x_batch))])
    for method in attributions.METHODS:
        fn = explainer(method)
        maps = attributions.explain(model, x, y, attributions.Settings(methods=(method,)).check(), layer).maps[method]
        record("sparseness", method, metrics.sparseness(maps),
               per_image(quantus.Sparseness(**common), x, y, maps), True)
        record("complexity", method, metrics.complexity(maps),
               per_image(quantus.Complexity(**common), x, y, maps), True)
        theirs = per_image(quantus.RandomLogit(num_classes=classes, **common), x, y, maps, explain_func=fn)
        off = np.concatenate([metrics.off_classes(y[i:i + 1], classes, 42) for i in range(len(y))])  # per batch of 1
        off_maps = np.concatenate([fn(model, x[i:i + 1], off[i:i + 1]) for i in range(len(x))])  # SmoothGrad's
        record("random-logit", method, metrics.random_logit(maps, off_maps), theirs, True)  # noise: as Quantus calls
        record("faithfulness-correlation", method,
               metrics.faithfulness_correlation(s.logits, x, y, maps, seed=1),
               per_image(quantus.FaithfulnessCorrelation(return_aggregate=False, **common), x, y, maps), False)
        if method == "occlusion":      # 600 re-explanations an image cost minutes; same code path as the rest
            continue
        xr, yr, mr = x[:args.robust], y[:args.robust], maps[:args.robust]
        rng = np.random.default_rng(3)
        uniform = metrics.uniform_copies(xr, 200, 0.2, rng=rng)
        gauss = metrics.gaussian_copies(xr, 200, 0.0, 0.1, rng=rng)
        again = lambda c: np.stack([fn(model, c[i], np.repeat(yr[i], len(c[i]))) for i in range(len(c))])  # noqa
        high, mean = metrics.sensitivity(mr, again(uniform))
        lipschitz = metrics.local_lipschitz(mr, again(gauss), xr, gauss)
        for name, ours, metric in (("max-sensitivity", high, quantus.MaxSensitivity),
                                   ("avg-sensitivity", mean, quantus.AvgSensitivity),
                                   ("local-lipschitz", lipschitz, quantus.LocalLipschitzEstimate)):
            record(name, method, ours, per_image(metric(**common), xr, yr, mr, explain_func=fn), False)
    out = pathlib.Path(__file__).parent / "results" / "quantus_check.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bad = [r for r in rows if not r["agree"]]
    print(f"{len(rows) - len(bad)} of {len(rows)} agree" + (f"; not: {[(r['metric'], r['method']) for r in bad]}"
                                                           if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
