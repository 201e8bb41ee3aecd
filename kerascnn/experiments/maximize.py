"""What each filter looks for: the input that maximises a convolution filter's mean activation, found
by gradient ascent on the pixels, drawn beside the filter's raw kernel.

The recipe is the keras-io example "Visualizing what convnets learn" (F. Chollet), with its three
regularisers: start from grey plus faint uniform noise; take the mean activation over the map's
inner positions only (two positions of border left out, which avoids border artefacts); step along
the gradient normalised to unit L2 norm. Then, for display, the result is standardised to a
standard deviation of 0.15 around grey, its border (25/180 of each side) cut off and clipped to
[0, 1]. keras-io works on [-1, 1] images of 180x180x3 with 30 steps of 10 times the unit gradient;
here images are in [0, 1] of any size, so a step is scaled to move the pixels by the same root mean
square (0.016 per step by default), and the noise is the same +-0.0625 around 0.5. The pixels are
not clipped during the ascent (keras-io does not clip either): the input says what the filter
responds to, not what an image can be. keras-io's 30 steps are too few here: on the MNIST cnn,
conv2's inputs are still one local blob at the inner border (mean activation 0.38) where 150 steps
fill the image with each filter's stripes or grid (mean activation 3.3), so 150 is the default.

The activation is the layer's rectified output where the network has one (conv2 -> conv2_relu in
the assignment's batch-norm blocks). One addition to keras-io's recipe: the objective also holds 1%
(`LEAK`) of the mean pre-activation (before the ReLU). Without it a filter that is silent on grey
gets no gradient and stays grey (on the MNIST cnn: 13 of conv1's 32 filters and 26 of conv2's,
trained on black backgrounds); with it the ascent first wakes the filter, then the rectified
activation takes over. A filter still silent after the ascent is marked dead. All filters of the
layer ascend together in one batch, one compiled step per iteration.

`style="lucid"` finds the input with lucid's regularisers instead (kerascnn.experiments.lucid: a
decorrelated Fourier parameterisation, colour decorrelation for 3 channels, a sigmoid into [0, 1], a
random shift / scale / rotation at every step, Adam; optionally `diversity` images per unit with
lucid's diversity term); `style="both"` runs both on the same units for a comparison. `classes`
maximises the logits of classes instead of filters (what the model takes for each class), with
either style.

The comparison (`measured`, `high_frequency`): both styles' final images are scored on the same
objective (the mean inner activation, or the logit), on the image as the model takes it in [0, 1]
pixels with no transformation -- plain's image clipped to [0, 1] (its ascent is unbounded; its
`activation` is the unclipped one), lucid's as it is (in [0, 1] by construction) -- and by the share
of their spectral energy above half the Nyquist frequency (lucid.high_frequency_share).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.errors import BadValue
from kerascnn.experiments.ascent import LEAK, NOISE  # noqa: F401  (the recipe's constants, documented above)
from kerascnn.experiments.filters import filter_weights
from kerascnn.experiments.maximize_text import summary, table  # noqa: F401  (this experiment's table and summary)

#: Pixel std under which an input found is called a uniform field (textures found have std ~2).
FLAT = 0.25
#: keras-io's display: standardised to this standard deviation around 0.5, this fraction of each side cut off.
DISPLAY_STD, DISPLAY_CROP = 0.15, 25 / 180
#: The styles, and each one's default number of steps (lucid: its own default of 512 Adam steps).
STYLES = ("plain", "lucid", "both")
STEPS = {"plain": 150, "lucid": 512}


@dataclass
class Options:
    layer: str | None = None    # a convolution layer (None: the first)
    filter: int | None = None   # one filter (None: all of the layer's)
    steps: int | None = None    # ascent steps (None: STEPS, plain 150 -- keras-io: 30, see above -- lucid 512)
    step_rms: float = 0.016     # plain: root-mean-square pixel change per step (keras-io's lr 10 on its images)
    seed: int = 0               # the starting noise (plain) or spectrum (lucid), and lucid's transformations
    style: str = "plain"        # "plain" (keras-io), "lucid" (regularised) or "both" (a comparison)
    classes: tuple | None = None  # class indices: maximise their logits instead of a layer's filters
    diversity: int = 1          # lucid: images per unit, pushed apart by lucid's diversity term (1: off)

    def check(self) -> None:
        if self.steps is not None and (isinstance(self.steps, bool) or int(self.steps) != self.steps
                                       or self.steps < 1):
            raise BadValue("steps", f"must be a whole number of at least 1, got {self.steps}")
        if not np.isfinite(self.step_rms) or self.step_rms <= 0:
            raise BadValue("step_rms", f"must be a positive number, got {self.step_rms}")
        if self.style not in STYLES:
            raise BadValue("style", f"must be one of {', '.join(STYLES)}, got {self.style!r}")
        if isinstance(self.diversity, bool) or int(self.diversity) != self.diversity or self.diversity < 1:
            raise BadValue("diversity", f"must be a whole number of at least 1, got {self.diversity}")
        if self.diversity > 1 and self.style == "plain":
            raise BadValue("diversity", "goes with style 'lucid' or 'both' (lucid's diversity term)")
        if self.classes is not None:
            if self.filter is not None or self.layer is not None:
                raise BadValue("classes", "maximises the logits: give classes or a layer / filter, not both")
            if not self.classes or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0
                                       for k in self.classes):
                raise BadValue("classes", f"must be class numbers, got {self.classes!r}")

    def steps_for(self, style: str) -> int:
        return int(self.steps) if self.steps is not None else STEPS[style]

    @property
    def styles(self) -> tuple[str, ...]:
        return ("plain", "lucid") if self.style == "both" else (self.style,)


@dataclass
class Run:
    """One style's answer. images (N, H, W, C): N = units x `per_unit` images, a unit's images in a row
    (plain: unclipped; lucid: in [0, 1]); start and activation (N,): the objective (the mean inner
    activation, or the logit) at the first step and on the final image, as the style optimises it
    (plain: the unclipped image; lucid: its start through a random transformation, the final image
    without); measured (N,): the same objective on the final image in [0, 1] pixels without any
    transformation (plain's clipped to [0, 1]; the number that compares the styles); high_frequency
    (N,): the share of that image's spectral energy above half the Nyquist frequency
    (kerascnn.experiments.lucid.high_frequency_share); predicted (N,), for classes: the model's top
    class for that image."""
    style: str
    steps: int
    images: np.ndarray
    start: np.ndarray
    activation: np.ndarray
    measured: np.ndarray
    high_frequency: np.ndarray
    per_unit: int = 1
    predicted: np.ndarray | None = None   # classes: the class the model gives each final image in [0, 1]

    def per(self, values: np.ndarray) -> np.ndarray:
        """(units,) the mean of `values` (N,) over each unit's images."""
        return np.asarray(values, np.float64).reshape(-1, self.per_unit).mean(axis=1)

    def to_dict(self) -> dict:
        return {"steps": self.steps, "images_per_unit": self.per_unit,
                "start_activation": self.start.round(6).tolist(), "activation": self.activation.round(6).tolist(),
                "activation_in_0_1": self.measured.round(6).tolist(),
                "high_frequency_share": self.high_frequency.round(6).tolist(),
                "predicted": None if self.predicted is None else self.predicted.tolist()}


@dataclass
class Result:
    """weights: the filters' raw kernels (experiments.filters.FilterWeights; None for classes); runs:
    {style: Run}, the first of options.styles being the one `images`, `start` and `activation` give
    (plain for "both"); units: the filters or classes maximised, labels their names."""
    weights: object
    read_from: str              # the layer whose output is maximised (the conv layer, its activation, or logits)
    runs: dict
    units: list
    labels: list
    options: Options

    @property
    def main(self) -> Run:
        return self.runs[self.options.styles[0]]

    @property
    def images(self) -> np.ndarray:
        """(N, H, W, C) the inputs found by the first style (plain: unclipped)."""
        return self.main.images

    @property
    def start(self) -> np.ndarray:
        return self.main.start

    @property
    def activation(self) -> np.ndarray:
        return self.main.activation

    @property
    def classes(self) -> bool:
        return self.options.classes is not None

    @property
    def dead(self) -> np.ndarray:
        """(N,) True where the mean activation is still zero after the ascent (never for logits)."""
        return np.zeros(len(self.activation), bool) if self.classes else self.activation <= 0

    def display(self, style: str | None = None) -> np.ndarray:
        """The images as drawn: plain's with keras-io's deprocessing (each standardised to std 0.15 around
        0.5, border cut, clipped); lucid's as they are (in [0, 1], they need none)."""
        run = self.runs[style] if style else self.main
        if run.style == "lucid":
            return np.asarray(run.images, np.float32)
        images = np.asarray(run.images, np.float64)
        centred = images - images.mean(axis=(1, 2, 3), keepdims=True)
        shown = 0.5 + DISPLAY_STD * centred / (centred.std(axis=(1, 2, 3), keepdims=True) + 1e-5)
        return np.clip(_cut(shown), 0.0, 1.0).astype(np.float32)

    @property
    def flat(self) -> np.ndarray:
        """(N,) True where plain's input found is a uniform field inside the cut border (pixel std < FLAT):
        a brightness detector, drawn plain grey by the display; its level is `inner_mean`. Never for lucid
        (its images are in [0, 1] and drawn as they are)."""
        if self.main.style == "lucid":
            return np.zeros(len(self.images), bool)
        return _cut(self.images).std(axis=(1, 2, 3)) < FLAT

    @property
    def inner_mean(self) -> np.ndarray:
        return _cut(self.images).mean(axis=(1, 2, 3))

    @property
    def name(self) -> str:
        """The figure's name: maximize_<layer>[_<N>], or classes_<k> / classes."""
        if self.classes:
            return f"classes_{self.labels[0]}" if len(self.units) == 1 else "classes"
        return f"{self.weights.layer}_{self.weights.filters[0]}" if self.weights.chosen else self.weights.layer

    def to_dict(self) -> dict:
        o = self.options
        out = {"layer": self.weights.layer if self.weights else None, "read_from": self.read_from,
               "filters": None if self.classes else list(self.units),
               "classes": list(self.labels) if self.classes else None,
               "style": o.style, "steps": self.main.steps, "step_rms": o.step_rms, "seed": o.seed,
               "diversity": o.diversity,
               "start_activation": self.start.round(6).tolist(), "activation": self.activation.round(6).tolist(),
               "dead": [int(f) for f, d in zip(self.units, self.dead) if d],
               "styles": {name: run.to_dict() for name, run in self.runs.items()},
               "measured": "the objective (" + ("the logit" if self.classes else "mean inner activation")
                           + ") on the final image in [0, 1] pixels, untransformed (plain's clipped); "
                             "high_frequency_share: |FFT|^2 of the mean-subtracted image above 0.25 cycles/pixel "
                             "over the total"}
        if len(self.runs) == 2:
            plain, lucid = self.runs["plain"], self.runs["lucid"]
            out["comparison"] = {"plain_activation": float(plain.measured.mean()),
                                 "lucid_activation": float(lucid.measured.mean()),
                                 "lucid_over_plain": float(lucid.measured.mean() / max(plain.measured.mean(), 1e-12)),
                                 "plain_high_frequency": float(plain.high_frequency.mean()),
                                 "lucid_high_frequency": float(lucid.high_frequency.mean())}
        return out


def _cut(images: np.ndarray) -> np.ndarray:
    """(F, H, W, C) without keras-io's display border (DISPLAY_CROP of each side)."""
    height, width = images.shape[1:3]
    cut_h, cut_w = int(round(height * DISPLAY_CROP)), int(round(width * DISPLAY_CROP))
    return images[:, cut_h:height - cut_h, cut_w:width - cut_w]


def run(subject, options: Options, progress=None) -> Result:
    """The inputs that maximise the units (a layer's filters, or classes' logits) in each style asked for."""
    from kerascnn.experiments import ascent, lucid

    options.check()
    if options.classes is not None:
        for k in options.classes:
            if k >= subject.num_classes:
                raise BadValue("classes", f"{subject.name} has classes 0-{subject.num_classes - 1}, got {k}")
        weights, layer, units = None, None, [int(k) for k in options.classes]
        labels = [subject.label(k) for k in units]
    else:
        weights = filter_weights(subject, options.layer, options.filter)
        layer, units, labels = weights.layer, list(weights.filters), [str(f) for f in weights.filters]
    classes = options.classes is not None
    per = {"plain": 1, "lucid": int(options.diversity)}
    work = sum(options.steps_for(s) * len(units) * per[s] for s in options.styles)
    tell = progress or (lambda *a: None)
    runs, done = {}, 0
    for style in options.styles:
        steps, at = options.steps_for(style), done
        report = lambda d, at=at: tell(at + d, at + d, work)   # noqa: E731
        if style == "plain":
            read_from, images, start, final = ascent.maximize(subject, layer, units, steps=steps, seed=options.seed,
                                                              step_rms=options.step_rms, classes=classes,
                                                              progress=report)
            _, extractor, objective = ascent.target(subject, layer, classes)
            shown = np.clip(images, 0.0, 1.0)
            chosen = np.eye(int(extractor.outputs[0].shape[-1]), dtype=np.float32)[units]
            measured = ascent.evaluate(extractor, objective, shown, chosen)
        else:
            read_from, images, start, final = ascent.lucid_run(subject, layer, units, options, progress=report)
            shown, measured = images, final
        predicted = subject.logits(shown).argmax(axis=1) if classes else None
        runs[style] = Run(style, steps, images, start, final, measured, lucid.high_frequency_share(shown), per[style],
                          predicted)
        done += steps * len(images)
    return Result(weights, read_from, runs, units, labels, options)


def figures(result: Result) -> dict:
    from kerascnn import plots

    name = result.name
    if result.classes or result.options.style != "plain":
        out = {f"maximize_{name}.png": plots.maximize_styles(result)}
    else:
        out = {f"maximize_{name}.png": plots.maximize_grid(result)}
    # the raw kernels in their own figure beside: those of many input channels, and any the styles'
    # figure has no room for (maximize_grid draws a first layer's kernels in its cells; maximize_styles not)
    if result.weights is not None and (result.weights.weights.shape[1] > 3 or result.options.style != "plain"):
        out[f"filters_{name}.png"] = plots.filter_grid(result.weights)
    return out


def arrays(result: Result) -> dict:
    if len(result.runs) == 1:
        return {"maximize.npy": result.images}
    return {f"maximize_{style}.npy": run.images for style, run in result.runs.items()}
