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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.errors import BadValue
from kerascnn.experiments.filters import filter_weights
from kerascnn.model.batching import batch_size
from kerascnn.outputs.document import Table

#: keras-io's start: uniform noise of this half-width around grey (in [0, 1] units).
NOISE = 0.0625
#: Pixel std under which an input found is called a uniform field (textures found have std ~2).
FLAT = 0.25
#: The pre-activation's weight in the objective: a filter silent on grey still gets a gradient.
LEAK = 0.01
#: keras-io's display: standardised to this standard deviation around 0.5, this fraction of each side cut off.
DISPLAY_STD, DISPLAY_CROP = 0.15, 25 / 180


@dataclass
class Options:
    layer: str | None = None    # a convolution layer (None: the first)
    filter: int | None = None   # one filter (None: all of the layer's)
    steps: int = 150            # gradient ascent steps (keras-io: 30; see the module docstring)
    step_rms: float = 0.016     # root-mean-square pixel change per step (keras-io's lr 10 on its images)
    seed: int = 0               # the starting noise

    def check(self) -> None:
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or self.steps < 1:
            raise BadValue("steps", f"must be a whole number of at least 1, got {self.steps}")
        if not np.isfinite(self.step_rms) or self.step_rms <= 0:
            raise BadValue("step_rms", f"must be a positive number, got {self.step_rms}")


@dataclass
class Result:
    """weights: the filters' raw kernels (experiments.filters.FilterWeights); images (F, H, W, C) the
    inputs found, unclipped; start (F,) and activation (F,) the mean inner activation before and after."""
    weights: object
    read_from: str              # the layer whose output is maximised (the conv layer, or its activation)
    images: np.ndarray
    start: np.ndarray
    activation: np.ndarray
    options: Options

    @property
    def dead(self) -> np.ndarray:
        """(F,) True where the mean activation is still zero after the ascent."""
        return self.activation <= 0

    def display(self) -> np.ndarray:
        """keras-io's deprocessing: each image standardised to std 0.15 around 0.5, border cut, clipped."""
        images = np.asarray(self.images, np.float64)
        centred = images - images.mean(axis=(1, 2, 3), keepdims=True)
        shown = 0.5 + DISPLAY_STD * centred / (centred.std(axis=(1, 2, 3), keepdims=True) + 1e-5)
        return np.clip(_cut(shown), 0.0, 1.0).astype(np.float32)

    @property
    def flat(self) -> np.ndarray:
        """(F,) True where the input found is a uniform field inside the cut border (pixel std < FLAT):
        a brightness detector, drawn plain grey by the display; its level is `inner_mean`."""
        return _cut(self.images).std(axis=(1, 2, 3)) < FLAT

    @property
    def inner_mean(self) -> np.ndarray:
        return _cut(self.images).mean(axis=(1, 2, 3))

    def to_dict(self) -> dict:
        return {"layer": self.weights.layer, "read_from": self.read_from, "filters": self.weights.filters,
                "steps": self.options.steps, "step_rms": self.options.step_rms, "seed": self.options.seed,
                "start_activation": self.start.round(6).tolist(), "activation": self.activation.round(6).tolist(),
                "dead": [int(f) for f, d in zip(self.weights.filters, self.dead) if d]}


def _cut(images: np.ndarray) -> np.ndarray:
    """(F, H, W, C) without keras-io's display border (DISPLAY_CROP of each side)."""
    height, width = images.shape[1:3]
    cut_h, cut_w = int(round(height * DISPLAY_CROP)), int(round(width * DISPLAY_CROP))
    return images[:, cut_h:height - cut_h, cut_w:width - cut_w]


def responses(subject, layer: str):
    """(pre-activation, activation) tensors of convolution `layer` in the graph of the logits model
    (pixels in [0, 1]): the input and output of its activation layer (conv2 -> conv2_relu), or of its
    built-in activation (through a linear twin of the layer), or its output twice when it has none."""
    conv = subject.model.get_layer(layer)
    read_from = subject.resolve_layer(layer)
    if read_from != layer:
        before, after = subject.layer_tensors(read_from)
        return read_from, before, after
    conv_in, conv_out = subject.layer_tensors(layer)
    if getattr(getattr(conv, "activation", None), "__name__", "linear") != "linear":
        twin = type(conv).from_config(conv.get_config() | {"activation": "linear", "name": f"{conv.name}_linear"})
        before = twin(conv_in)
        twin.set_weights(conv.get_weights())
        return read_from, before, conv_out
    return read_from, conv_out, conv_out


def _ascent_step(extractor, inner: int, leak: float):
    import tensorflow as tf

    def inner_mean(maps, chosen):
        maps = tf.cast(maps, tf.float32)
        if inner:
            maps = maps[:, inner:-inner, inner:-inner, :]
        return tf.reduce_mean(tf.reduce_sum(maps * chosen[:, None, None, :], axis=-1), axis=(1, 2))  # (F,)

    @tf.function(reduce_retracing=True)
    def step(x, chosen, size):
        with tf.GradientTape() as tape:
            tape.watch(x)
            before, after = extractor(x, training=False)
            value = inner_mean(after, chosen)
            objective = value + leak * inner_mean(before, chosen)
        grads = tape.gradient(objective, x)
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=(1, 2, 3), keepdims=True))
        return value, x + size * grads / (norm + 1e-12)
    return step


def maximize(subject, layer: str, filters: list[int], *, steps: int, step_rms: float, seed: int, leak: float = LEAK):
    """(layer read, images (F, H, W, C), mean inner activation before (F,) and after (F,)) for `filters`.
    Each image's ascent is its own (the step is normalised per image), so the filters go through in
    batches as large as the model allows (kerascnn.model.batching) with the same result."""
    import keras


    read_from, before, after = responses(subject, layer)
    extractor = keras.Model(subject.logits_model.inputs[0], [before, after])
    h, w, count = (int(d) for d in after.shape[1:])
    inner = 2 if min(h, w) > 4 else 0
    step = _ascent_step(extractor, inner, leak)
    shape = subject.input_shape
    rng = np.random.default_rng(seed)
    x = (0.5 + rng.uniform(-NOISE, NOISE, (len(filters),) + shape)).astype(np.float32)
    chosen = np.eye(count, dtype=np.float32)[filters]
    size = np.float32(step_rms * np.sqrt(np.prod(shape)))   # unit-norm step times sqrt(pixels): that RMS per pixel
    batch = batch_size(extractor, gradients=True)
    images, starts, finals = [], [], []
    for i in range(0, len(filters), batch):
        part, picked, start = x[i:i + batch], chosen[i:i + batch], None
        for _ in range(steps):
            value, part = step(part, picked, size)
            start = value.numpy() if start is None else start
        finals.append(step(part, picked, np.float32(0.0))[0].numpy())
        images.append(np.asarray(part))
        starts.append(start)
    return read_from, np.concatenate(images), np.concatenate(starts), np.concatenate(finals)


def run(subject, options: Options, progress=None) -> Result:

    options.check()
    weights = filter_weights(subject, options.layer, options.filter)
    read_from, images, start, final = maximize(subject, weights.layer, weights.filters, steps=options.steps,
                                               step_rms=options.step_rms, seed=options.seed)
    return Result(weights, read_from, images, start, final, options)


def figures(result: Result) -> dict:
    from kerascnn import plots

    layer = result.weights.layer
    name = f"{layer}_{result.weights.filters[0]}" if result.weights.chosen else layer
    out = {f"maximize_{name}.png": plots.maximize_grid(result)}
    if result.weights.weights.shape[1] > 3:   # kernels with many input channels: their own figure beside
        out[f"filters_{name}.png"] = plots.filter_grid(result.weights)   # the name plots.maximize_grid gives
    return out


def arrays(result: Result) -> dict:
    return {"maximize.npy": result.images}


def table(result: Result):

    rows, marked = [], []
    for i, f in enumerate(result.weights.filters):
        dead = bool(result.dead[i])
        rows.append([f, f"{result.start[i]:.4f}", f"{result.activation[i]:.4f}",
                     f"uniform {result.inner_mean[i]:.2f}" if result.flat[i] else "pattern"])
        marked += [(i, 2)] if dead else []
    return Table(["filter", "activation at start", "activation found", "input found"], rows,
                 f"{result.read_from}: mean activation over the inner positions, on grey noise and after "
                 f"{result.options.steps} gradient ascent steps (marked: still zero, a dead filter); uniform: the "
                 f"input is one brightness (given, unclipped) inside the border",
                 numeric=(0, 1, 2), marked=tuple(marked))


def summary(result: Result) -> str:
    dead, flat = int(result.dead.sum()), int(result.flat.sum())
    text = (f"{result.weights.layer}: inputs that maximise {len(result.weights.filters)} filter(s)' mean activation "
            f"({result.read_from}), by {result.options.steps} normalised gradient ascent steps from grey noise: the "
            f"mean activation rose from {result.start.mean():.3f} to {result.activation.mean():.3f}")
    if dead:
        text += f"; {dead} filter(s) are still silent after it (dead)"
    if flat:
        text += f"; {flat} answer to a uniform field (brightness detectors) rather than a pattern"
    return text + "."
