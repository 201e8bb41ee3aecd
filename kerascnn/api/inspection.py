"""Looking at a model: evaluate, filters, activations, occlude, explain (the commands of the same names).

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
            steps: int | None = None, input_range=None, preprocess=None, class_names=None) -> Result:
    """The kernels of a convolution layer, or (maximize=True) the input each filter responds to most.

    Arguments:
        layer: the convolution layer (None: the first).
        filter: one filter's number (None: all of them).
        maximize: draw what each filter looks for (gradient ascent on the input) instead of its weights.
        steps: gradient-ascent steps (with maximize only; None: the experiment's default).

    Returns:
        Result with filters.png (or maximize.png) and the kernels' numbers.
    """
    from kerascnn.errors import BadValue
    from kerascnn.experiments import filters as kernels
    from kerascnn.experiments import maximize as maximizing

    if steps is not None and not maximize:
        raise BadValue("steps", "goes with maximize=True")
    s = _subject(model, data, input_range, preprocess, class_names)
    if maximize:
        options = maximizing.Options(layer, filter, **({} if steps is None else {"steps": steps}))
        return Result(maximizing, maximizing.run(s, options), "filters", [s])
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
    names = tuple(n.strip() for n in layers.split(",") if n.strip()) if isinstance(layers, str) else layers
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
    pick = pick or Pick(class_name=s.task.label(default_class(s.task, 7)))
    if attack:
        raw = explain_attack.run(s, explain_attack.Options(pick=pick, attack=attack, target=target, settings=settings))
        return Result(explain_attack, raw, "explain", [s])
    return Result(single, single.run(s, single.Options(pick=pick, target=target, settings=settings)), "explain", [s])
