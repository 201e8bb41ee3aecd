"""Every method scored the way the field scores explanations (Quantus 0.6's metrics, with its defaults;
kerascnn.attributions.metrics says how) next to the deletion/insertion areas and the model-randomisation
check of kerascnn.experiments.faithfulness (its run, unchanged). Each image's map explains its predicted
class. The robustness metrics re-explain 2 x nr_samples perturbed copies of an image with every method,
which costs hundreds of times one map: they run on the first `robust_count` images only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from kerascnn.attributions import gradients as attributions, metrics as scores
from kerascnn.attributions.gradients import LABELS, Settings
from kerascnn.errors import BadValue
from kerascnn.lists import split_list
from kerascnn.experiments import faithfulness as faith
from kerascnn.experiments.explain import target_class
from kerascnn.outputs.document import Table

#: name: (label, direction, reference). Direction "higher" or "lower" is better.
METRICS = {
    "faithfulness-correlation": ("faithfulness corr", "higher", "Bhatt et al. 2020"),
    "max-sensitivity": ("max-sensitivity", "lower", "Yeh et al. 2019"),
    "avg-sensitivity": ("avg-sensitivity", "lower", "Yeh et al. 2019"),
    "local-lipschitz": ("local Lipschitz", "lower", "Alvarez-Melis & Jaakkola 2018"),
    "sparseness": ("sparseness (Gini)", "higher", "Chalasani et al. 2020"),
    "complexity": ("complexity (entropy)", "lower", "Bhatt et al. 2020"),
    "random-logit": ("random-logit (SSIM)", "lower", "Sixt et al. 2020"),
    "deletion": ("deletion AUC", "lower", "Petsiuk et al. 2018"),
    "insertion": ("insertion AUC", "higher", "Petsiuk et al. 2018"),
    "randomisation": ("re-init rank corr", "lower", "Adebayo et al. 2018"),
}
ARROWS = {"higher": "\u2191", "lower": "\u2193"}
ROBUST = ("max-sensitivity", "avg-sensitivity", "local-lipschitz")
FROM_FAITHFULNESS = ("deletion", "insertion", "randomisation")


def parse_metrics(spec) -> tuple[str, ...]:
    """'sparseness,complexity', 'all' or a sequence -> names in METRICS order; BadValue("metrics") otherwise."""
    names = [str(m).lower() for m in split_list(spec, "metrics")]  # an empty item is refused there
    if names == ["all"]:
        return tuple(METRICS)
    if unknown := [m for m in names if m not in METRICS]:
        raise BadValue("metrics", f"unknown metric {unknown[0]!r}: choose from {', '.join(METRICS)} "
                                  "(comma-separated) or all")
    return tuple(m for m in METRICS if m in names)


@dataclass
class Options:
    count: int = 100                  # test images scored (the first `count`, in the data source's order)
    robust_count: int = 5             # of those, the first images of the robustness metrics (see the module)
    metrics: tuple = tuple(METRICS)
    subset_size: int | None = None    # faithfulness correlation's pixels (None: Quantus' 224 on 28x28, else 2/7)
    nr_runs: int = 100                # faithfulness correlation's subsets per image (Quantus)
    nr_samples: int = 200             # copies per image of the robustness metrics (Quantus)
    lower_bound: float = 0.2          # max/avg-sensitivity's uniform noise U[-0.2, 0.2] (Quantus)
    perturb_std: float = 0.1          # local Lipschitz' Gaussian noise (Quantus)
    logit_seed: int = 42              # random-logit's class draw (Quantus)
    seed: int = 0                     # faithfulness correlation's subsets, the noise; faithfulness' seed
    steps: int = 20                   # deletion/insertion points (kerascnn.experiments.faithfulness)
    randomise: int = 10               # images of the randomisation check (idem)
    settings: Settings = field(default_factory=Settings)

    def check(self) -> "Options":
        for name, low in (("count", 1), ("robust_count", 0), ("nr_runs", 2), ("nr_samples", 1), ("steps", 1),
                          ("randomise", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < low:
                raise BadValue(name, f"must be a whole number of at least {low}, got {value}")
        self.metrics = parse_metrics(self.metrics)
        return self

    def subset(self, shape) -> int:
        """Pixels per faithfulness-correlation subset for images of `shape` (H, W, ...)."""
        pixels = shape[0] * shape[1]
        return min(pixels, self.subset_size or max(1, round(224 * pixels / 784)))


@dataclass
class Result:
    indices: np.ndarray               # (N,) test indices scored
    targets: np.ndarray               # (N,) the predicted class of each, explained
    methods: list
    values: dict                      # {metric: {method: (n,) per image}} (n: N, robust_count or randomise);
    #                                   inf/NaN (an all-zero map's sensitivity) are left out of means and counted
    settings: dict                    # every setting, Quantus' names where they exist
    faithfulness: object | None       # kerascnn.experiments.faithfulness.Result (deletion, insertion, randomisation)
    seconds: dict
    description: str

    @property
    def count(self) -> int:
        return len(self.indices)

    def describe(self, metric: str) -> tuple:
        """(label, "higher" or "lower" is better, reference)."""
        return METRICS[metric]

    def best(self, metric: str) -> str | None:
        finite = {m: np.asarray(v, np.float64)[np.isfinite(v)] for m, v in self.values[metric].items()}
        means = {m: v.mean() for m, v in finite.items() if len(v)}
        if not means:
            return None
        if metric == "randomisation":     # near 0 is best
            return min(means, key=lambda m: abs(means[m]))
        pick = max if METRICS[metric][1] == "higher" else min
        return pick(means, key=means.get)

    def to_dict(self) -> dict:
        def stats(v):
            v = np.asarray(v, np.float64)
            ok = v[np.isfinite(v)]
            if not len(ok):
                return {"n": int(len(v)), "not_finite": int(len(v))}
            q1, median, q3 = np.percentile(ok, [25, 50, 75])
            return {"mean": float(ok.mean()), "std": float(ok.std()), "median": float(median), "q1": float(q1),
                    "q3": float(q3), "n": int(len(v)), "not_finite": int(len(v) - len(ok))}

        out = {"images": self.description, "indices": self.indices.tolist(), "targets": self.targets.tolist(),
               "settings": self.settings,
               "metrics": {k: {"label": METRICS[k][0], "better": METRICS[k][1], "reference": METRICS[k][2],
                               "best": self.best(k), "methods": {m: stats(v) for m, v in per.items()}}
                           for k, per in self.values.items()},
               "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}
        if self.faithfulness is not None:
            out["faithfulness"] = self.faithfulness.to_dict()
        return out


def run(subject, options: Options, progress=None) -> Result:
    options = options.check()
    settings = options.settings.check()
    chosen = options.metrics
    layer = attributions.gradcam_layer(subject, settings.layer) if "gradcam" in settings.methods else None
    images, labels = subject.task.test()
    count = min(options.count, len(labels))
    images = images[:count]
    targets = target_class(subject, None, subject.logits(images).argmax(axis=1))
    robust = min(options.robust_count, count) if set(ROBUST) & set(chosen) else 0
    randomise = min(options.randomise, count) if "randomisation" in chosen else 0
    use_faith = bool(set(FROM_FAITHFULNESS) & set(chosen))
    faith_work = (2 * count + randomise) if use_faith else 0
    total = 3 * count + faith_work + 10 * robust
    tell = progress or (lambda *a: None)
    model, methods = subject.logits_model, list(settings.methods)
    values = {k: {} for k in chosen}
    seconds = {}
    begin = time.perf_counter()
    maps = attributions.explain(model, images, targets, settings, layer, memo=subject.memo).maps
    seconds["maps"] = time.perf_counter() - begin
    tell(count, count, total)
    done = count
    faith_result = None
    if use_faith:
        begin = time.perf_counter()
        faith_result = faith.run(subject, faith.Options(count, options.steps, randomise, options.seed, settings),
                                 progress=lambda d, i, t: tell(done + d, count, total))
        seconds["faithfulness"] = time.perf_counter() - begin
        done += faith_work
        for m in methods:
            for kind in ("deletion", "insertion"):
                if kind in chosen:
                    values[kind][m] = faith_result.auc(kind, m)
            if "randomisation" in chosen and faith_result.correlation:
                values["randomisation"][m] = faith_result.correlation[m][-1]
    subset = options.subset(images.shape[1:])
    if "faithfulness-correlation" in chosen:
        begin = time.perf_counter()
        values["faithfulness-correlation"] = scores.faithfulness_correlation(
            subject.logits, images, targets, {m: maps[m] for m in methods}, nr_runs=options.nr_runs,
            subset_size=subset, seed=options.seed)
        seconds["faithfulness-correlation"] = time.perf_counter() - begin
    done += count
    tell(done, count, total)
    for m in methods:
        if "sparseness" in chosen:
            values["sparseness"][m] = scores.sparseness(maps[m])
        if "complexity" in chosen:
            values["complexity"][m] = scores.complexity(maps[m])
    classes = subject.logits(images[:1]).shape[-1]
    if "random-logit" in chosen and classes > 1:
        begin = time.perf_counter()
        off = attributions.explain(model, images, scores.off_classes(targets, classes, options.logit_seed),
                                   settings, layer, memo=subject.memo).maps
        for m in methods:
            values["random-logit"][m] = scores.random_logit(maps[m], off[m])
        seconds["random-logit"] = time.perf_counter() - begin
    done += count
    tell(done, count, total)
    if robust:
        begin = time.perf_counter()
        _robustness(model, images[:robust], targets[:robust], {m: v[:robust] for m, v in maps.items()}, settings,
                    layer, options, values, lambda i: tell(done + 10 * i, count, total))
        seconds["robustness"] = time.perf_counter() - begin
    tell(total, count, total)
    quantus, shape = scores.QUANTUS_DEFAULTS, images.shape[1:]
    record = {"count": count, "robust_count": robust, "randomise": randomise, "metrics": list(chosen),
              "methods": methods, "targets": "the predicted class",
              "faithfulness_correlation": quantus["faithfulness_correlation"] | {
                  "nr_runs": options.nr_runs, "subset_size": subset, "pixels": int(images.shape[1] * images.shape[2]),
                  "seed": options.seed},
              "sensitivity": quantus["sensitivity"] | {"nr_samples": options.nr_samples,
                                                       "lower_bound": options.lower_bound,
                                                       "note": "max- and avg-sensitivity share the copies"},
              "local_lipschitz": quantus["local_lipschitz"] | {"nr_samples": options.nr_samples,
                                                               "perturb_std": options.perturb_std},
              "sparseness": quantus["sparseness"], "complexity": quantus["complexity"],
              "random_logit": quantus["random_logit"] | {"seed": options.logit_seed, "num_classes": int(classes)},
              "deletion_insertion": {"steps": options.steps, "baseline": "black (0)", "seed": options.seed},
              "randomisation": {"images": randomise, "stage": "every layer re-initialised",
                                "value": "Spearman of |map| with the trained model's"},
              "explain": {"ig_steps": settings.ig_steps, "smoothgrad_samples": settings.smoothgrad_samples,
                          "smoothgrad_noise": settings.smoothgrad_noise, "layer": layer, "seed": settings.seed,
                          "occlusion_patch": settings.patch(shape), "occlusion_stride": settings.stride(shape)}}
    return Result(np.arange(count), targets, methods, values, record, faith_result, seconds,
                  f"test images 0..{count - 1} of {subject.task.name}")


def _robustness(model, images, targets, maps, settings, layer, options: Options, values: dict, tell) -> None:
    """Max-/avg-sensitivity and local Lipschitz: per image, its uniform and Gaussian copies are
    explained by every method in one batch."""
    rng = np.random.default_rng(options.seed)
    s = options.nr_samples
    for m in settings.methods:
        for k in ROBUST:
            if k in values:
                values[k][m] = np.empty(len(images))
    for i in range(len(images)):
        x = images[i:i + 1]
        uniform = scores.uniform_copies(x, s, options.lower_bound, rng=rng)[0]
        gauss = scores.gaussian_copies(x, s, 0.0, options.perturb_std, rng=rng)[0]
        copies = np.concatenate([uniform, gauss])
        new = attributions.explain(model, copies, np.repeat(targets[i], 2 * s), settings, layer).maps
        for m, v in new.items():
            high, mean = scores.sensitivity(maps[m][i:i + 1], v[None, :s])
            for k, number in (("max-sensitivity", high), ("avg-sensitivity", mean),
                              ("local-lipschitz", scores.local_lipschitz(maps[m][i:i + 1], v[None, s:], x,
                                                                          gauss[None]))):
                if k in values:
                    values[k][m][i] = number[0]
        tell(i + 1)


def figures(result: Result) -> dict:
    from kerascnn import plots

    return {"metrics.png": plots.metric_boxes(result)}


def _cell(v) -> str:
    v = np.asarray(v, np.float64)
    ok = v[np.isfinite(v)]
    return "-" if not len(ok) else f"{ok.mean():.3f}\u00b1{ok.std():.3f}"


def table(result: Result) -> Table:
    rows, marked = [], []
    for k, per in result.values.items():
        label, better, _ = METRICS[k]
        best = result.best(k)
        rows.append([f"{label} {ARROWS[better]}", str(len(next(iter(per.values())))) if per else "0"]
                    + [_cell(per[m]) if m in per else "-" for m in result.methods] + [LABELS[best] if best else "-"])
    s = result.settings
    said = []  # the settings of the metrics computed; then those left out
    if "faithfulness-correlation" in result.values:
        said.append(f"faithfulness corr {s['faithfulness_correlation']['nr_runs']} subsets of "
                    f"{s['faithfulness_correlation']['subset_size']} pixels")
    if any(k in result.values for k in ROBUST):
        said.append(f"sensitivity and local Lipschitz {s['sensitivity']['nr_samples']} copies\n"
                    f"(U[-{s['sensitivity']['lower_bound']}, {s['sensitivity']['lower_bound']}], "
                    f"N(0, {s['local_lipschitz']['perturb_std']}\u00b2)) of the first {s['robust_count']} images")
    left = [METRICS[k][0] for k in METRICS if k not in result.values and k not in FROM_FAITHFULNESS]
    left = ([f"{', '.join(left)} (kerascnn explain --metrics)"] if left else []) + (
        [] if any(k in result.values for k in FROM_FAITHFULNESS) else ["deletion/insertion, re-init (--faithfulness)"])
    return Table(["metric", "n"] + [LABELS[m] for m in result.methods] + ["best"], rows,
                 f"{result.count} {result.description}, each map of the predicted class: mean\u00b1std over the n "
                 f"images; \u2191 higher, \u2193 lower is better"
                 + ("\n(re-init rank corr: near 0 is best)" if "randomisation" in result.values else "")
                 + (". Quantus 0.6 defaults: " + "; ".join(said) if said else "")
                 + (f".\nNot computed here: {'; '.join(left)}" if left else "")
                 + "; result.json holds every setting",
                 numeric=tuple(range(1, len(result.methods) + 2)), marked=tuple(marked))


def summary(result: Result) -> str:
    wins = {}
    for k in result.values:
        best = result.best(k)
        if best:
            wins.setdefault(best, []).append(METRICS[k][0])
    if not wins:
        return "No metric was computed."
    parts = [f"{LABELS[m]} on {', '.join(ks)}" for m, ks in sorted(wins.items(), key=lambda w: -len(w[1]))]
    return (f"Over {result.count} test images, the best method per metric is: " + "; ".join(parts) + ". "
            "No method wins every axis: the metrics measure different things (faithfulness, robustness, "
            "complexity, randomisation), as Quantus' authors stress.")
