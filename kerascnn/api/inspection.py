"""Looking at a model: evaluate, filters, activations, occlude, explain, concepts (the commands of the same names).

Every function takes the user's objects: `model` (a keras.Model, a .keras file, a run folder; None:
the shipped MNIST cnn), `data` (None: MNIST; a tensorflow-datasets name, a folder, `(x, y)` arrays,
`((x, y), (x_test, y_test))` or a tf.data.Dataset), `input_range=` / `preprocess=` (what the model
takes, when it cannot be read off the model) and `class_names=`. One image by `index=`,
`class_name=`, `digit=` or `image=` (an array or a picture file). Each returns a `Result`
(kerascnn.api.results): `.table()`, `.figures()`, `.to_dict()`, `.save(out)`, shown in a notebook.
Nothing is written and nothing printed; `progress=False` hides the bar of long runs.
"""
from __future__ import annotations

from kerascnn.api.calls import build_options, check_batch_size, percent, progress_bar, with_options
from kerascnn.api.inputs import as_pick, as_pixels, subject
from kerascnn.api.results import Result
from kerascnn.data.tasks import Pick
from kerascnn.experiments import occlusion as _occlusion


def _subject(model, data, input_range, preprocess, class_names):
    return subject(model, data, input_range=input_range, preprocess=preprocess, class_names=class_names)


def _pick(s, index, class_name, digit, image, default=None):
    if digit is not None and not s.task.mnist_shaped:
        from kerascnn.errors import BadValue

        raise BadValue("digit", "is MNIST's: for this dataset use class_name=")
    if image is not None and not isinstance(image, str) and not hasattr(image, "__fspath__"):
        image = as_pixels(image[None], "image")[0]
    return as_pick(index, class_name, digit, image, default)


def evaluate(model=None, data=None, *, batch_size: int | None = None, input_range=None, preprocess=None,
             class_names=None) -> Result:
    """Test accuracy and loss, per-class accuracy, the confusion matrix and a grid of predictions.

    Arguments:
        model: a keras.Model, a .keras file or a run folder (None: the shipped MNIST cnn).
        data: the test images: a dataset name, a folder, (x, y) arrays or a tf.data.Dataset (None: MNIST).
        batch_size: images per forward pass (memory only; None: as many as fit).

    Returns:
        Result: `.accuracy`, `.loss`, `.confusion`, `.predictions`; figures confusion.png and predictions.png.

    Example:
        >>> kc.evaluate(model, (x_test, y_test)).accuracy
    """
    from kerascnn.experiments import evaluation as experiment

    s = _subject(model, data, input_range, preprocess, class_names)
    raw = experiment.run(s, experiment.Options(batch_size=check_batch_size(batch_size)))
    extra = {"model": str(s.path) if s.path else s.name, "dataset": s.task.name}
    return Result(experiment, raw, "evaluate", [s], extra)


def filters(model=None, data=None, *, layer: str | None = None, filter: int | None = None, maximize: bool = False,
            steps: int | None = None, style: str | None = None, classes=None, diversity: int | None = None,
            input_range=None, preprocess=None, class_names=None, progress: bool = True) -> Result:
    """The kernels of a convolution layer, or (maximize=True) the input each filter responds to most.

    Arguments:
        layer: the convolution layer (None: the first).
        filter: one filter's number (None: all of them).
        maximize: draw what each filter looks for (gradient ascent on the input) instead of its weights.
        steps: ascent steps (with maximize only; None: the experiment's default, 150 plain, 512 lucid).
        style: with maximize, "plain" (keras-io's ascent on the pixels, the default), "lucid" (lucid's
            regularisers: a decorrelated Fourier image, random shift / scale / rotation at every step)
            or "both" (side by side, with the activation and high-frequency share of each).
        classes: with maximize, maximise the logits of classes instead of a layer's filters: a class
            (name or number), a list of them, or "all".
        diversity: with style lucid or both, images per unit, pushed apart by lucid's diversity term.

    Returns:
        Result with filters.png (or maximize.png) and the kernels' numbers.

    Example:
        >>> kc.filters(layer="conv2", maximize=True, style="lucid")
        >>> kc.filters(maximize=True, classes=7, style="both")
    """
    from kerascnn.errors import BadValue
    from kerascnn.experiments import filters as kernels
    from kerascnn.experiments import maximize as maximizing

    for name, value in (("steps", steps), ("style", style), ("classes", classes), ("diversity", diversity)):
        if value is not None and not maximize:
            raise BadValue(name, "goes with maximize=True")
    s = _subject(model, data, input_range, preprocess, class_names)
    if maximize:
        chosen = None
        if classes is not None:
            if isinstance(classes, str) and classes.strip().lower() == "all":
                chosen = tuple(range(s.num_classes))
            else:
                many = classes if isinstance(classes, (list, tuple)) else [classes]
                chosen = tuple(s.task.class_index(k, "classes") for k in many)
        extra = {k: v for k, v in (("steps", steps), ("style", style), ("diversity", diversity)) if v is not None}
        options = maximizing.Options(layer, filter, classes=chosen, **extra)
        options.check()
        with progress_bar(progress and options.style != "plain", "feature visualisation (%)", 100) as bar:
            raw = maximizing.run(s, options, progress=percent(bar))
        return Result(maximizing, raw, "filters", [s])
    return Result(kernels, kernels.run(s, kernels.Options(layer, filter)), "filters", [s])


def activations(model=None, data=None, *, index=None, class_name=None, digit=None, image=None, layers=None,
                input_range=None, preprocess=None, class_names=None) -> Result:
    """The activation maps of one image after each named layer (None: every convolution block).

    Arguments:
        index / class_name / digit / image: the image (exactly one; image= an array (H, W[, C]) or a file).
        layers: layer names, a list or "conv1,conv2".

    Returns:
        Result with activations.png; `.maps` {layer: (h, w, c) array}.
    """
    from kerascnn.experiments import activations as experiment

    s = _subject(model, data, input_range, preprocess, class_names)
    pick = _pick(s, index, class_name, digit, image)
    if pick is None:
        from kerascnn.errors import BadValue

        raise BadValue("index", "choose one image: index=, class_name=, digit= or image=")
    if isinstance(layers, str):
        from kerascnn.lists import split_list

        layers = split_list(layers, "layers")  # an empty item ('conv1,') is refused, as --layers refuses it
    names = layers
    return Result(experiment, experiment.run(s, experiment.Options(pick, None if names is None else tuple(names))),
                  "activations", [s])


@with_options(_occlusion.Options, exclude=("pick",))
def occlude(model=None, data=None, *, index=None, class_name=None, digit=None, image=None, input_range=None,
            preprocess=None, class_names=None, progress: bool = True, **options) -> Result:
    """A grey square patch slid over one image: what the model says at every position.

    Arguments:
        index / class_name / digit / image: the image (exactly one).
        patch, stride: the patch's side and step in pixels (None: half the image side, half the patch).
        fill: the patch's grey in [0, 1].
        label: with image=, the class to follow (a name or a number).
        map: also the stride-1 sensitivity map.

    Returns:
        Result with occlusion.png (and occlusion_map.png); `.occlusion.prob_true` per position.

    Example:
        >>> kc.occlude(digit=7, map=True)
    """
    from kerascnn.experiments import occlusion as experiment

    s = _subject(model, data, input_range, preprocess, class_names)
    pick = _pick(s, index, class_name, digit, image)
    if pick is None:
        from kerascnn.errors import BadValue

        raise BadValue("index", "choose one image: index=, class_name=, digit= or image=")
    if options.get("label") is not None:
        options["label"] = s.task.class_index(options["label"], "label")
    opts = build_options(experiment.Options, options, "occlude", exclude=("pick",), pick=pick)
    with progress_bar(progress and opts.map, "occlusion map", 100) as bar:
        raw = experiment.run(s, opts, progress=percent(bar))
    return Result(experiment, raw, "occlude", [s])


def explain(model=None, data=None, *, index=None, class_name=None, digit=None, image=None, method="all",
            target=None, layer: str | None = None, ig_steps: int = 64, faithfulness: bool = False,
            count: int | None = None, randomise: int | None = None, attack: str | None = None, metrics=False,
            input_range=None, preprocess=None, class_names=None, progress: bool = True) -> Result:
    """Attribution maps of one image (saliency, SmoothGrad, integrated gradients, Grad-CAM, occlusion),
    or with faithfulness=True their deletion/insertion scores over `count` test images.

    Arguments:
        index / class_name / digit / image: the image (default: the first test image of class 7).
        method: "all", a list, or "saliency,gradcam". target: the class explained (None: the true one).
        layer: Grad-CAM's layer. ig_steps: integrated gradients' path points.
        faithfulness: score the methods instead (count images; randomise: layers re-initialised).
        attack: "noise": explain the image before and after the noise attack.
        metrics: True, or names ("sparseness,complexity"): Quantus' metrics and deletion/insertion/
            randomisation per method over `count` test images (kerascnn.experiments.explanation_metrics).

    Returns:
        Result with explain.png (faithfulness.png, metrics.png ...); `.maps` {method: (H, W) map}.
    """
    from kerascnn.attributions.gradients import Settings
    from kerascnn.errors import BadValue
    from kerascnn.experiments import explain as single
    from kerascnn.experiments import explain_attack
    from kerascnn.experiments import faithfulness as faith
    from kerascnn.experiments.common import default_class

    settings = Settings(methods=method, layer=layer, ig_steps=ig_steps)
    s = _subject(model, data, input_range, preprocess, class_names)
    pick = _pick(s, index, class_name, digit, image)
    if metrics is not False and metrics is not None:
        from kerascnn.experiments import explanation_metrics as scored

        if faithfulness or pick is not None or target is not None or attack is not None:
            raise BadValue("metrics", "scores test images by their predicted class: it takes no image, target, "
                                      "attack or faithfulness")
        options = scored.Options(metrics="all" if metrics is True else metrics, settings=settings,
                                 **{k: v for k, v in (("count", count), ("randomise", randomise)) if v is not None})
        with progress_bar(progress, "explanation metrics (%)", 100) as bar:
            raw = scored.run(s, options, progress=None if bar is None else
                             (lambda done, _, total: bar(100 * done // total)))
        return Result(scored, raw, "explain", [s])
    if faithfulness:
        if pick is not None or target is not None or attack is not None:
            raise BadValue("faithfulness", "scores test images by their predicted class: it takes no image, "
                                           "target or attack")
        options = faith.Options(settings=settings, **{k: v for k, v in (("count", count), ("randomise", randomise))
                                                      if v is not None})
        with progress_bar(progress, "faithfulness (%)", 100) as bar:
            raw = faith.run(s, options, progress=None if bar is None else
                            (lambda done, _, total: bar(100 * done // total)))
        return Result(faith, raw, "explain", [s])
    if count is not None or randomise is not None:
        raise BadValue("count" if count is not None else "randomise", "goes with faithfulness=True")
    pick = pick or Pick(class_name=s.task.label(default_class(s.task, 7, with_image=True)))
    if attack:
        raw = explain_attack.run(s, explain_attack.Options(pick=pick, attack=attack, target=target, settings=settings))
        return Result(explain_attack, raw, "explain", [s])
    return Result(single, single.run(s, single.Options(pick=pick, target=target, settings=settings)), "explain", [s])


def _concept_pairs(concepts) -> tuple:
    """None, {name: folder or images}, "NAME=DIR", or a list of those strings or (name, source) pairs ->
    ((name, source), ...)."""
    from kerascnn.data.concepts import parse_concept

    if concepts is None:
        return ()
    if isinstance(concepts, dict):
        return tuple(concepts.items())
    if isinstance(concepts, str):
        concepts = [concepts]
    return tuple(parse_concept(c) if isinstance(c, str) else tuple(c) for c in concepts)


def concepts(model=None, data=None, *, concepts=None, layer: str | None = None, target=None, random_runs: int = 10,
             count: int = 100, random_images: int | None = None, demo_images: int = 50, alpha: float = 0.05,
             seed: int = 0, input_range=None, preprocess=None, class_names=None, progress: bool = True) -> Result:
    """TCAV (Kim et al. 2018): which concepts each class's logit uses, at one layer, with a t-test
    against random concepts (kerascnn.experiments.concepts).

    Arguments:
        concepts: {name: folder or (N, H, W, C) images in [0, 1]}, or "NAME=DIR" strings, each of at least
            10 images (None on MNIST: the demonstration concepts horizontal-bar, closed-loop,
            diagonal-stroke, thick-stroke, cut from the training digits).
        layer: where the CAVs live (None: the last convolution). target: a class, a list, or None: every class.
        random_runs: CAVs per concept (>= 2), each against its own random training images (random_images;
            None: as many as the largest concept has). count: test images per target class.
        alpha: significance level before the Bonferroni correction over concepts x targets. seed: every draw.

    Returns:
        Result with concepts.png, concept_examples.png; `.score(concept, class)` (None: not significant),
        `.uses(concept)` {"raises": [...], "lowers": [...]}.

    Example:
        >>> kc.concepts(target=7).uses("horizontal-bar")
    """
    from kerascnn.experiments import concepts as experiment

    s = _subject(model, data, input_range, preprocess, class_names)
    if target is None:
        targets = None
    else:
        targets = tuple(s.task.class_index(k, "target") for k in
                        (target if isinstance(target, (list, tuple)) else [target]))
    options = experiment.Options(concepts=_concept_pairs(concepts), layer=layer, targets=targets,
                                 random_runs=random_runs, count=count, random_images=random_images,
                                 demo_images=demo_images, alpha=alpha, seed=seed).check()
    with progress_bar(progress, "TCAV (%)", 100) as bar:
        raw = experiment.run(s, options, progress=None if bar is None else
                             (lambda done, _, total: bar(100 * done // total)))
    return Result(experiment, raw, "concepts", [s])
