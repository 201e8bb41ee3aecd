"""Which map to believe: deletion and insertion scores of every method over `count` test images,
against a random pixel order, and the model-randomisation check (kerascnn.attributions.faithfulness says how).
Each image's map explains its predicted class; the curves follow P(predicted class).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kerascnn.errors import BadValue
from kerascnn.experiments.explain import target_class
from kerascnn.attributions import gradients as attributions, faithfulness
from kerascnn.attributions.gradients import LABELS, Settings
from kerascnn.attributions.faithfulness import area
from kerascnn.outputs.document import Table

#: Orders every map is scored against: chance, and the image as its own map (brightest pixels first:
#: with a black baseline on MNIST it already puts the ink, all that deletion can remove, first).
BASELINES = ("random", "brightness")


@dataclass
class Options:
    count: int = 100                  # test images scored (the first `count`, in the data source's order)
    steps: int = 20                   # points of each curve after the first (5% of the pixels per step)
    randomise: int = 10               # images of the randomisation check (the first of those; 0: skip it)
    seed: int = 0                     # tie-breaking and the random order; the re-initialised weights
    settings: Settings = field(default_factory=Settings)

    def check(self) -> None:
        for name, low in (("count", 1), ("steps", 1), ("randomise", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < low:
                raise BadValue(name, f"must be a whole number of at least {low}, got {value}")


@dataclass
class Result:
    indices: np.ndarray               # (N,) test indices scored
    targets: np.ndarray               # (N,) the predicted class of each, explained and followed
    labels: np.ndarray                # (N,) their true classes
    deletion: dict                    # {order: (N, steps + 1) P(target)}; orders: the methods, "random", "brightness"
    insertion: dict
    completeness: dict | None         # integrated gradients over the N images: relative error (N,) ...
    stages: list                      # "trained", then the layers re-initialised, from the output down
    correlation: dict                 # {method: (stages, M) Spearman of |map| with the trained model's}
    correlation_ink: dict             # the same over each image's non-black pixels only
    example_image: np.ndarray | None  # the first image, with its maps at every stage (figure)
    example_maps: dict
    seconds: dict                     # maps per method, curves, randomisation
    description: str
    class_names: tuple | None = None

    @property
    def count(self) -> int:
        return len(self.indices)

    @property
    def orders(self) -> list[str]:
        return list(self.deletion)

    @property
    def methods(self) -> list[str]:
        return [m for m in self.deletion if m not in BASELINES]

    @property
    def fractions(self) -> np.ndarray:
        steps = next(iter(self.deletion.values())).shape[1] - 1
        return np.arange(steps + 1) / steps

    @property
    def randomised_count(self) -> int:
        return next(iter(self.correlation.values())).shape[1] if self.correlation else 0

    def auc(self, kind: str, order: str) -> np.ndarray:

        return area(getattr(self, kind)[order])

    def gain(self, kind: str, method: str, baseline: str = "random") -> np.ndarray:
        """Per image, how much better than a baseline order (random: chance): baseline minus method
        for deletion, method minus baseline for insertion (> 0: better)."""
        difference = self.auc(kind, method) - self.auc(kind, baseline)
        return -difference if kind == "deletion" else difference

    def to_dict(self) -> dict:
        def stats(values):
            return {"mean": float(np.mean(values)), "std": float(np.std(values)),
                    "sem": float(np.std(values) / np.sqrt(len(values)))}

        scores = {o: {"deletion_auc": stats(self.auc("deletion", o)), "insertion_auc": stats(self.auc("insertion", o)),
                      "deletion_curve": self.deletion[o].mean(axis=0).round(6).tolist(),
                      "insertion_curve": self.insertion[o].mean(axis=0).round(6).tolist()} for o in self.orders}
        for m in self.methods:
            scores[m] |= {f"{kind}_gain{over}": stats(self.gain(kind, m, base)) for kind in ("deletion", "insertion")
                          for base, over in (("random", ""), ("brightness", "_over_brightness"))}
        out = {"images": self.description, "indices": self.indices.tolist(), "targets": self.targets.tolist(),
               "baseline": "black (0)", "scores": scores,
               "randomisation": {"stages": self.stages, "images": self.randomised_count,
                                 "spearman_abs": {m: c.mean(axis=1).round(6).tolist() for m, c in self.correlation.items()},
                                 "spearman_abs_non_black": {m: c.mean(axis=1).round(6).tolist()
                                                            for m, c in self.correlation_ink.items()}},
               "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}
        if self.completeness is not None:
            out["completeness"] = {k: stats(v) for k, v in self.completeness.items()}
        return out


def run(subject, options: Options, progress=None) -> Result:
    import time


    options.check()
    settings = options.settings.check()
    layer = attributions.gradcam_layer(subject, settings.layer) if "gradcam" in settings.methods else None
    images, labels = subject.task.test()
    count = min(options.count, len(labels))
    indices = np.arange(count)
    images, labels = images[:count], labels[:count]
    targets = target_class(subject, None, subject.logits(images).argmax(axis=1))
    work = 2 * count + options.randomise
    tell = progress or (lambda *a: None)
    maps = attributions.explain(subject.logits_model, images, targets, settings, layer, memo=subject.memo)
    tell(count, count, work)
    rng = np.random.default_rng(options.seed)
    orders = {m: np.stack([faithfulness.pixel_order(v, rng) for v in maps.maps[m]]) for m in settings.methods}
    orders["random"] = np.stack([rng.permutation(images.shape[1] * images.shape[2]) for _ in range(count)])
    orders["brightness"] = np.stack([faithfulness.pixel_order(image.mean(axis=-1), rng) for image in images])
    begin = time.perf_counter()
    deletion, insertion = faithfulness.curves(subject.logits_model, images, targets, orders, options.steps)
    seconds = dict(maps.seconds) | {"curves": time.perf_counter() - begin}
    tell(2 * count, 2 * count, work)
    begin = time.perf_counter()
    stages, correlation, ink, example = _randomisation(subject, images[:options.randomise], targets[:options.randomise],
                                                  {m: v[:options.randomise] for m, v in maps.maps.items()},
                                                  settings, layer, options.seed)
    seconds["randomisation"] = time.perf_counter() - begin
    tell(work, work, work)
    return Result(indices, targets, labels, deletion, insertion, maps.completeness, stages, correlation, ink,
                  images[0] if options.randomise else None, example, seconds,
                  f"test images 0..{count - 1} of {subject.task.name}", subject.class_names)


def _randomisation(subject, images, targets, trained: dict, settings: Settings, layer, seed: int):
    """(stages, {method: (stages, M) rank correlations of |map|}, the same on non-black pixels,
    {method: [image 0's map per stage]}). A black background is 0 in every black-baseline map
    (integrated gradients, occlusion) whatever the weights, so all-pixel correlations stay high for
    them; the non-black pixels say whether the ranking within the image depends on the weights."""

    if not len(images):
        return [], {}, {}, {}
    stages = ["trained"]
    every = {m: [np.ones(len(images))] for m in trained}
    ink = {m: [np.ones(len(images))] for m in trained}
    example = {m: [trained[m][0]] for m in trained}
    flat = {m: np.abs(v.reshape(len(images), -1)) for m, v in trained.items()}
    lit = images.max(axis=-1).reshape(len(images), -1) > 0
    for name, model in faithfulness.randomised_models(subject.logits_model, seed):
        maps = attributions.explain(model, images, targets, settings, layer).maps
        stages.append(name)
        for m, v in maps.items():
            new = np.abs(v.reshape(len(images), -1))
            every[m].append(faithfulness.spearman(flat[m], new))
            ink[m].append(np.array([faithfulness.spearman(a[k], b[k]) for a, b, k in zip(flat[m], new, lit)]))
            example[m].append(v[0])
    return (stages, {m: np.stack(c) for m, c in every.items()}, {m: np.stack(c) for m, c in ink.items()}, example)


def figures(result: Result) -> dict:
    from kerascnn import plots

    out = {"faithfulness.png": plots.faithfulness_curves(result)}
    if result.correlation:
        out["randomisation.png"] = plots.randomisation_curves(result)
        out["randomisation_maps.png"] = plots.randomisation_maps(result)
    return out


def table(result: Result):

    def spread(values):
        return f"{np.mean(values):.3f}"

    def gain(kind, m):
        g = result.gain(kind, m)
        return f"{g.mean():+.3f}\u00b1{g.std() / np.sqrt(len(g)):.3f}"

    rows, marked = [], []
    for i, o in enumerate(result.orders):
        row = [LABELS[o], spread(result.auc("deletion", o)), spread(result.auc("insertion", o))]
        if o in BASELINES:
            row += ["-"] * 6
        else:
            better = [f"{_beats(result, o, base).mean():.0%}" for base in BASELINES]
            row += [gain("deletion", o), gain("insertion", o), *better, _final(result.correlation, o),
                    _final(result.correlation_ink, o)]
            marked += [(i, c) for c, kind in ((3, "deletion"), (4, "insertion")) if result.gain(kind, o).mean() <= 0]
        rows.append(row)
    # Short headers and a two-line caption keep the console table under 110 columns; result.json and
    # README's Explanations section hold the spreads and the long definitions.
    return Table(["method", "del AUC", "ins AUC", "del gain", "ins gain", ">random", ">bright", "re-init r",
                  "non-black r"], rows,
                 f"{result.count} {result.description}: area under P(class) as pixels are set to black (del,\n"
                 f"lower is better) or restored (ins, higher is better); gain over random \u00b1 s.e. (marked: none);\n"
                 f">random, >bright: images where the map beats that order on both curves; re-init r: rank\n"
                 f"correlation of |map| once every layer is re-initialised ({result.randomised_count} images; near 0 "
                 f"is good)", numeric=(1, 2, 3, 4, 5, 6, 7, 8), marked=tuple(marked))


def _beats(result: Result, method: str, baseline: str) -> np.ndarray:
    """(N,) True where the map beats the baseline order on both deletion and insertion."""
    return (result.gain("deletion", method, baseline) > 0) & (result.gain("insertion", method, baseline) > 0)


def _final(correlation: dict, method: str) -> str:
    c = correlation.get(method)
    return "-" if c is None or len(c) < 2 else f"{c[-1].mean():+.2f}"


def summary(result: Result) -> str:
    if not result.methods:
        return "No method was scored."
    score = {m: result.gain("deletion", m).mean() + result.gain("insertion", m).mean() for m in result.methods}
    best = max(score, key=score.get)
    rand = (result.auc("deletion", "random").mean(), result.auc("insertion", "random").mean())
    text = (f"Over {result.count} test images, {LABELS[best]} ranks the pixels the model needs best: deletion AUC "
            f"{result.auc('deletion', best).mean():.3f} and insertion AUC {result.auc('insertion', best).mean():.3f}, "
            f"against {rand[0]:.3f} and {rand[1]:.3f} for a random order.")
    losers = [LABELS[m] for m in result.methods if score[m] <= 0]
    if losers:
        text += f" No better than random overall: {', '.join(losers)}."
    bright = (result.auc("deletion", "brightness").mean(), result.auc("insertion", "brightness").mean())
    above = [LABELS[m] for m in result.methods
             if result.gain("deletion", m, "brightness").mean() > 0 and result.gain("insertion", m, "brightness").mean() > 0]
    text += (f" But the image as its own map (brightest pixels first, no model at all) already scores {bright[0]:.3f} "
             f"and {bright[1]:.3f}; on average " + (f"{', '.join(above)} beat it on both" if above else
                                                    "no method beats it on both") + ".")
    if result.completeness is not None:
        text += (f" Integrated gradients' completeness error: {np.mean(result.completeness['relative_error']):.2%} "
                 f"of logit(image) - logit(black) on average.")
    if result.correlation:
        stay = [f"{LABELS[m]} {result.correlation[m][-1].mean():+.2f} ({result.correlation_ink[m][-1].mean():+.2f})"
                for m in result.correlation]
        text += (f" With every layer re-initialised, the maps' rank correlation with the trained model's is "
                 f"{', '.join(stay)} over all pixels (the non-black ones); near 0 means the map depends on the "
                 f"weights, and a black background scores the same whatever the weights in black-baseline maps.")
    return text
