"""The ascents behind kerascnn.experiments.maximize: the units' objective in the model's graph (a
convolution filter's mean inner activation, or a class's logit), the plain normalised ascent on the
pixels (keras-io's recipe, see maximize's docstring), lucid's regularised ascent on them
(kerascnn.experiments.lucid), and the objective measured on final images as they are."""
from __future__ import annotations

import numpy as np

from kerascnn.model.batching import batch_size

#: keras-io's start: uniform noise of this half-width around grey (in [0, 1] units).
NOISE = 0.0625
#: The pre-activation's weight in the objective: a filter silent on grey still gets a gradient.
LEAK = 0.01


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


def target(subject, layer: str | None, classes: bool):
    """(layer read, extractor, objective) of the units to maximise: `extractor(x)` the model's outputs
    needed, `objective(outputs, chosen)` -> (value, total, maps), where `chosen` (B, K) one-hot rows pick
    each image's unit, value (B,) is the number reported (the mean inner rectified activation, or the
    logit), total (B,) what is ascended (value plus LEAK times the mean pre-activation for filters) and
    maps the layer's maps for lucid's diversity term (for classes: the last convolution block's)."""
    import keras
    import tensorflow as tf

    if classes:
        logits = subject.logits_model.outputs[0]
        spatial = subject.conv_layers() or subject.spatial_layers()
        maps = subject.layer_tensors(subject.resolve_layer(spatial[-1]))[1] if spatial else logits
        extractor = keras.Model(subject.logits_model.inputs[0], [logits, maps])

        def objective(outputs, chosen):
            value = tf.reduce_sum(tf.cast(outputs[0], tf.float32) * chosen, axis=-1)
            return value, value, outputs[1]
        return "logits", extractor, objective
    read_from, before, after = responses(subject, layer)
    extractor = keras.Model(subject.logits_model.inputs[0], [before, after])
    h, w = (int(d) for d in after.shape[1:3])
    inner = 2 if min(h, w) > 4 else 0

    def inner_mean(maps, chosen):
        maps = tf.cast(maps, tf.float32)
        if inner:
            maps = maps[:, inner:-inner, inner:-inner, :]
        return tf.reduce_mean(tf.reduce_sum(maps * chosen[:, None, None, :], axis=-1), axis=(1, 2))  # (B,)

    def objective(outputs, chosen):
        value = inner_mean(outputs[1], chosen)
        return value, value + LEAK * inner_mean(outputs[0], chosen), outputs[1]
    return read_from, extractor, objective


def _ascent_step(extractor, objective):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(x, chosen, size):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value, total, _ = objective(extractor(x, training=False), chosen)
        grads = tape.gradient(total, x)
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=(1, 2, 3), keepdims=True))
        return value, x + size * grads / (norm + 1e-12)
    return step


def maximize(subject, layer: str, filters: list[int], *, steps: int, step_rms: float, seed: int, classes: bool = False,
             progress=None):
    """(layer read, images (F, H, W, C), mean inner activation before (F,) and after (F,)) for `filters`
    (or the logits of the classes `filters` with classes=True), by plain ascent. Each image's ascent is
    its own (the step is normalised per image), so the units go through in batches as large as the model
    allows (kerascnn.model.batching) with the same result."""
    read_from, extractor, objective = target(subject, layer, classes)
    step = _ascent_step(extractor, objective)
    shape = subject.input_shape
    rng = np.random.default_rng(seed)
    x = (0.5 + rng.uniform(-NOISE, NOISE, (len(filters),) + shape)).astype(np.float32)
    chosen = np.eye(int(extractor.outputs[0].shape[-1]), dtype=np.float32)[filters]
    size = np.float32(step_rms * np.sqrt(np.prod(shape)))   # unit-norm step times sqrt(pixels): that RMS per pixel
    batch = batch_size(extractor, gradients=True)
    images, starts, finals = [], [], []
    for i in range(0, len(filters), batch):
        part, picked, start = x[i:i + batch], chosen[i:i + batch], None
        for t in range(steps):
            value, part = step(part, picked, size)
            start = value.numpy() if start is None else start
            if progress is not None:
                progress(i * steps + (t + 1) * len(picked))
        finals.append(step(part, picked, np.float32(0.0))[0].numpy())
        images.append(np.asarray(part))
        starts.append(start)
    return read_from, np.concatenate(images), np.concatenate(starts), np.concatenate(finals)


def evaluate(extractor, objective, images: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """(N,) the objective's value on `images` as they are (no transformation), in batches."""
    import tensorflow as tf

    batch = batch_size(extractor, gradients=False)
    out = []
    for i in range(0, len(images), batch):
        outputs = extractor(tf.constant(images[i:i + batch], tf.float32), training=False)
        out.append(objective(outputs, tf.constant(chosen[i:i + batch]))[0].numpy())
    return np.concatenate(out)


def lucid_run(subject, layer, units, options, progress=None):
    """(layer read, images (N, H, W, C) in [0, 1], objective at the first (warped) step (N,), objective on
    the final images as they are (N,)) by lucid's regularised ascent; N = units x options.diversity."""
    from kerascnn.experiments import lucid

    read_from, extractor, objective = target(subject, layer, options.classes is not None)
    group = int(options.diversity)
    chosen = np.repeat(np.eye(int(extractor.outputs[0].shape[-1]), dtype=np.float32)[units], group, axis=0)
    images, start = lucid.render(extractor, objective, chosen, subject.input_shape, steps=options.steps_for("lucid"),
                                 seed=options.seed, group=group, batch=batch_size(extractor, gradients=True),
                                 progress=progress)
    final = evaluate(extractor, objective, images, chosen)
    return read_from, images, start, final
