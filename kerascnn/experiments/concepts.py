"""Which human concepts a class's logit uses: TCAV (Kim et al. 2018; kerascnn.attributions.concepts has
the math). Per concept and run, a CAV of the concept's images against random training images at one
layer; per target class, the share of its first `count` test images whose logit rises along the CAV.
Against it, CAVs of random images against other random images, run for run; a concept counts where a
two-sided t-test over the runs separates the two at alpha / (concepts x targets) (Bonferroni), and is
otherwise reported as not significant, with no score. On MNIST with no concept given, the four
demonstration concepts of kerascnn.data.concepts, found in the training images.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from kerascnn.attributions import concepts as tcav
from kerascnn.data import concepts as examples
from kerascnn.data.tasks import to_float
from kerascnn.errors import BadValue
from kerascnn.outputs.document import Table


@dataclass
class Options:
    concepts: tuple = ()              # (name, folder or (N, H, W, C) array in [0, 1]) pairs; () on MNIST: the demo's
    layer: str | None = None          # where the CAVs live (None: the last convolution, after its activation)
    targets: tuple | None = None      # class indices scored (None: every class)
    random_runs: int = 10             # CAVs per concept, each against its own random counterexamples
    count: int = 100                  # test images per target class: the first of that class
    random_images: int | None = None  # counterexamples per run (None: as many as the largest concept has images)
    demo_images: int = 50             # images per MNIST demonstration concept
    alpha: float = 0.05               # significance level, before the Bonferroni correction
    seed: int = 0                     # the random draws, the demo's picks, the CAVs' train/test splits
    examples_shown: int = field(default=8, repr=False)   # images of each concept kept for the figure

    def check(self) -> "Options":
        for name, low in (("random_runs", 2), ("count", 1), ("demo_images", examples.MIN_IMAGES)):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < low:
                raise BadValue(name, f"must be a whole number of at least {low}, got {value}")
        if self.random_images is not None and (int(self.random_images) != self.random_images
                                               or self.random_images < examples.MIN_IMAGES):
            raise BadValue("random_images", f"must be at least {examples.MIN_IMAGES}, got {self.random_images}")
        if not 0 < self.alpha < 1:
            raise BadValue("alpha", f"must be between 0 and 1, got {self.alpha}")
        names = [name for name, _ in self.concepts]
        if len(set(names)) != len(names):
            raise BadValue("concepts", f"two concepts are named {next(n for n in names if names.count(n) > 1)!r}")
        return self


@dataclass
class Result:
    layer: str
    concepts: list                    # names, in the order given
    sources: dict                     # name: where its images came from
    sizes: dict                       # name: how many images
    examples: dict                    # name: (k, H, W, C) the first few, for the figure
    targets: list                     # class indices
    class_names: list                 # of the targets
    counts: list                      # test images scored per target
    scores: np.ndarray                # (concepts, targets, runs) TCAV scores
    random_scores: np.ndarray         # (targets, runs) random-vs-random CAVs' scores
    p_values: np.ndarray              # (concepts, targets) two-sided t-test against random_scores
    significant: np.ndarray           # (concepts, targets) p < alpha / (concepts x targets)
    cav_accuracy: np.ndarray          # (concepts, runs) held-out accuracy of each CAV
    random_accuracy: np.ndarray       # (runs,) of the random-vs-random CAVs
    settings: dict
    seconds: dict

    @property
    def threshold(self) -> float:
        """The Bonferroni-corrected level each p-value is held to."""
        return self.settings["alpha"] / max(1, self.scores.shape[0] * self.scores.shape[1])

    def score(self, concept: str, target: int) -> float | None:
        """The mean TCAV score over the runs, or None where it is not significant."""
        c, t = self.concepts.index(concept), self.targets.index(target)
        return float(self.scores[c, t].mean()) if self.significant[c, t] else None

    def uses(self, concept: str) -> dict:
        """{"raises": [...], "lowers": [...]}: the targets whose logit the concept significantly raises
        (score above the random CAVs') or lowers."""
        c = self.concepts.index(concept)
        out = {"raises": [], "lowers": []}
        for t, k in enumerate(self.targets):
            if self.significant[c, t]:
                up = self.scores[c, t].mean() > self.random_scores[t].mean()
                out["raises" if up else "lowers"].append(k)
        return out

    def to_dict(self) -> dict:
        def cell(c, t):
            runs = self.scores[c, t]
            out = {"significant": bool(self.significant[c, t]), "p_value": float(self.p_values[c, t])}
            if self.significant[c, t]:
                out |= {"score": float(runs.mean()), "std": float(runs.std())}
            return out | {"runs": runs.round(4).tolist()}

        labels = [str(n) for n in self.class_names]
        return {"layer": self.layer, "targets": labels, "test_images": dict(zip(labels, self.counts)),
                "concepts": {name: {"source": self.sources[name], "images": self.sizes[name],
                                    "cav_accuracy": float(np.nanmean(self.cav_accuracy[c])),
                                    "raises": [labels[self.targets.index(k)] for k in self.uses(name)["raises"]],
                                    "lowers": [labels[self.targets.index(k)] for k in self.uses(name)["lowers"]],
                                    "scores": {labels[t]: cell(c, t) for t in range(len(self.targets))}}
                             for c, name in enumerate(self.concepts)},
                "random": {"cav_accuracy": float(np.nanmean(self.random_accuracy)),
                           "scores": {labels[t]: {"mean": float(r.mean()), "std": float(r.std()),
                                                  "runs": r.round(4).tolist()}
                                      for t, r in enumerate(self.random_scores)}},
                "significance": {"test": "two-sided Student t-test of the concept's run scores against the "
                                         "random CAVs' (scipy.stats.ttest_ind)",
                                 "bonferroni_tests": int(self.scores.shape[0] * self.scores.shape[1]),
                                 "alpha": self.settings["alpha"], "threshold": self.threshold},
                "settings": self.settings, "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}


def concept_layer(subject, name: str | None) -> str:
    """The layer the CAVs read: None: the last convolution (after its activation, as Grad-CAM's); a
    spatial layer is resolved the same way; any other named layer (a Dense one) is taken as it is."""
    import keras

    if name is None:
        return subject.resolve_layer(subject.last_conv_layer(), "layer")
    if name in subject.spatial_layers():
        return subject.resolve_layer(name, "layer")
    inner = [layer.name for layer in subject.model.layers if not isinstance(layer, keras.layers.InputLayer)][:-1]
    if name not in inner:
        raise BadValue("layer", f"{name!r} is not a hidden layer of the model: choose from {', '.join(inner)}")
    return name


def _concepts(subject, options: Options, x_train, y_train) -> tuple[dict, dict, np.ndarray]:
    """{name: images}, {name: source}, the training indices used as concept images."""
    task = subject.task
    images, sources, used = {}, {}, []
    if not options.concepts:
        if not task.is_mnist:
            raise BadValue("concepts", "name at least one concept, NAME=DIR (a folder of its pictures): only "
                                       "MNIST has demonstration concepts")
        picks = examples.demo_concepts(x_train, y_train, options.demo_images, options.seed)
        picks = {name: pick for name, pick in picks.items() if len(pick[1]) >= examples.MIN_IMAGES}
        if not picks:
            raise BadValue("concepts", f"none of MNIST's demonstration concepts has {examples.MIN_IMAGES} "
                                       f"examples among these training images: name one, NAME=DIR")
        for name, (cut, index) in picks.items():
            images[name], used = cut, used + list(index)
            classes = ", ".join(str(c) for c in np.unique(y_train[index]))
            sources[name] = (f"cut from MNIST training digits with {examples.DEMO_RULES[name]} (classes "
                             f"{classes})")
        return images, sources, np.array(used, np.int64)
    for name, source in options.concepts:
        if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
            files = examples.concept_files(source, name)
            images[name] = examples.read_concept(files, task.input_shape, light_background=task.mnist_shaped)
            sources[name] = str(source)
        else:
            images[name], sources[name] = examples.check_images(source, name), "an array"
            if images[name].shape[1:] != task.input_shape:
                raise BadValue("concepts", f"{name}: images of shape {images[name].shape[1:]}, the model takes "
                                           f"{task.input_shape}")
    return images, sources, np.array(used, np.int64)


def run(subject, options: Options, progress=None) -> Result:
    options = options.check()
    begin = time.perf_counter()
    tell = progress or (lambda *a: None)
    task, model = subject.task, subject.logits_model
    layer = concept_layer(subject, options.layer)
    targets = list(range(task.num_classes)) if options.targets is None else \
        [task.check_class(int(k), "target") for k in options.targets]
    if not targets:
        raise BadValue("target", "choose at least one class")
    arrays = task.arrays()
    x_train, y_train = arrays.x_train, arrays.y_train
    concepts, sources, used = _concepts(subject, options, x_train, y_train)
    names, runs = list(concepts), options.random_runs
    size = options.random_images or max(len(v) for v in concepts.values())
    pool = np.setdiff1d(np.arange(len(y_train)), used)
    if len(pool) < 2 * size:
        raise BadValue("random_images", f"{2 * size} random training images per run are needed, {len(pool)} are "
                                        f"at hand")
    total, done = len(targets) + runs * (len(names) + 2), 0
    x_test, y_test = task.test()
    grads, counts = [], []
    for k in targets:
        chosen = np.flatnonzero(y_test == k)[:options.count]
        if not len(chosen):
            raise BadValue("target", f"no test image of class {task.label(k)!r}")
        grads.append(tcav.layer_gradients(model, layer, x_test[chosen], k)[1])
        counts.append(len(chosen))
        done += 1
        tell(done, 0, total)
    seconds = {"gradients": time.perf_counter() - begin}
    begin = time.perf_counter()
    acts = {name: tcav.layer_gradients(model, layer, images, 0)[0] for name, images in concepts.items()}
    rng = np.random.default_rng(options.seed)
    scores = np.zeros((len(names), len(targets), runs))
    random_scores = np.zeros((len(targets), runs))
    accuracy, random_accuracy = np.zeros((len(names), runs)), np.zeros(runs)
    for r in range(runs):
        draw = to_float(x_train[rng.choice(pool, 2 * size, replace=False)])   # unsorted: a folder's come by class
        drawn = tcav.layer_gradients(model, layer, draw, 0)[0]
        negative, positive = drawn[:size], drawn[size:]
        done += 1
        cav = tcav.fit_cav(positive, negative, seed=options.seed + r)
        random_accuracy[r] = cav.accuracy
        random_scores[:, r] = [tcav.tcav_score(g, cav.direction) for g in grads]
        done += 1
        tell(done, 0, total)
        for c, name in enumerate(names):
            cav = tcav.fit_cav(acts[name], negative, seed=options.seed + r)
            accuracy[c, r] = cav.accuracy
            scores[c, :, r] = [tcav.tcav_score(g, cav.direction) for g in grads]
            done += 1
            tell(done, 0, total)
    seconds["cavs"] = time.perf_counter() - begin
    p_values = np.array([[tcav.t_test(scores[c, t], random_scores[t]) for t in range(len(targets))]
                         for c in range(len(names))]).reshape(len(names), len(targets))
    tests = len(names) * len(targets)
    settings = {"layer": layer, "random_runs": runs, "count": options.count, "random_images": int(size),
                "demo_images": options.demo_images if not options.concepts else None, "alpha": options.alpha,
                "seed": options.seed, "classifier": "L2 logistic regression (alpha 0.01), 67/33 train/test split",
                "random": "per run, 2 x random_images training images (no concept image): half the counterexamples "
                          "of every CAV, half the random 'concept' of the baseline CAV"}
    shown = options.examples_shown
    return Result(layer, names, sources, {n: len(v) for n, v in concepts.items()},
                  {n: v[:shown] for n, v in concepts.items()}, targets, [task.label(k) for k in targets], counts,
                  scores, random_scores, p_values, p_values < options.alpha / tests, accuracy, random_accuracy,
                  settings, seconds)


def figures(result: Result) -> dict:
    from kerascnn.plots.concepts import concept_examples, concept_scores

    return {"concepts.png": concept_scores(result), "concept_examples.png": concept_examples(result)}


def _cell(result: Result, c: int, t: int) -> str:
    runs = result.scores[c, t]
    return f"{runs.mean():.2f}\u00b1{runs.std():.2f}" if result.significant[c, t] else "n.s."


def table(result: Result) -> Table:
    rows = [[name, f"{np.nanmean(result.cav_accuracy[c]):.2f}"] + [_cell(result, c, t) for t in
                                                                   range(len(result.targets))]
            for c, name in enumerate(result.concepts)]
    rows.append(["(random)", f"{np.nanmean(result.random_accuracy):.2f}"]
                + [f"{r.mean():.2f}\u00b1{r.std():.2f}" for r in result.random_scores])
    s = result.settings
    return Table(["concept", "CAV acc"] + [str(n) for n in result.class_names], rows,
                 f"TCAV scores at {result.layer}: per target class, the share of its first {s['count']} test images "
                 f"whose logit rises along the concept's CAV, mean\u00b1std over {s['random_runs']} CAVs, each "
                 f"against {s['random_images']} random training images; n.s.: not separated from the random "
                 f"CAVs' scores (last row) by a two-sided t-test at p < {s['alpha']}/{result.scores.shape[0]} x "
                 f"{result.scores.shape[1]} = {result.threshold:.2g} (Bonferroni). CAV acc: held-out accuracy",
                 numeric=tuple(range(1, len(result.targets) + 2)))


def summary(result: Result) -> str:
    parts = []
    for name in result.concepts:
        used = result.uses(name)
        said = []
        for way in ("raises", "lowers"):
            if used[way]:
                said.append(f"{way} the logit of " + ", ".join(
                    f"{result.class_names[result.targets.index(k)]} ({result.score(name, k):.2f})" for k in used[way]))
        parts.append(f"{name} " + ("; ".join(said) if said else "is significant for no class"))
    return (f"At {result.layer}, over {result.settings['random_runs']} CAVs each (TCAV score in parentheses, "
            f"Bonferroni-corrected p < {result.threshold:.2g}): " + "; ".join(parts) + ". Elsewhere not "
            "significant: its CAVs do no better than random images' CAVs.")
