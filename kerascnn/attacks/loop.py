"""The gradient machinery every attack shares: argument checks, the tape (one helper), one compiled
masked step and the tf.while_loop that runs it in chunks (see the package docstring for why)."""
from __future__ import annotations

import math
import re
import weakref
from typing import Callable

import numpy as np

from kerascnn.errors import BadValue
from kerascnn.model.predict import predict_logits, softmax

ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-7
#: The Gaussian noise the nontargeted and targeted attacks start from (grey, pixel std 0.25).
NOISE_MEAN, NOISE_STD = 0.5, 0.25
#: The pixel update rules (see the package docstring for which attack uses which, and why).
OPTIMIZERS = ("sign", "adam")

#: progress(steps_done, images_done, images_total): called every `check_every` steps and at the end.
Progress = Callable[[int, int, int], None]

_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------- argument checks
def parse_classes(spec: str, num_classes: int | None = None) -> list[int]:
    """'all', '0-9', '3,5,8', '0-4,7' -> sorted distinct classes (checked against `num_classes` when
    given). BadValue("classes") on anything else."""
    text = str(spec).replace(" ", "").lower()
    if text == "all":
        if num_classes is None:
            raise BadValue("classes", "'all' needs the number of classes")
        return list(range(num_classes))
    if not text:
        raise BadValue("classes", "is empty: give e.g. all, 0-9, 3,5,8 or 0-4,7")
    classes: set[int] = set()
    from kerascnn.lists import split_list

    for part in split_list(text, "classes"):  # '3,', ',3', ',' and '3,,5' are refused there
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise BadValue("classes", f"{spec!r}: cannot read {part!r} (give e.g. all, 0-9, 3,5,8 or 0-4,7)")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if low > high or (num_classes is not None and high >= num_classes):
            limit = "" if num_classes is None else f" within 0-{num_classes - 1}"
            raise BadValue("classes", f"{spec!r}: {part!r} is not a class or range{limit}")
        classes.update(range(low, high + 1))
    return sorted(classes)


def check_settings(*, steps: int | None = None, lr: float | None = None, confidence: float | None = None,
                   beta: float | None = None, optimizer: str | None = None) -> None:
    """Raises BadValue (one line, naming the parameter) for a value no attack can use. None: not checked."""
    if steps is not None and (isinstance(steps, bool) or int(steps) != steps or steps < 1):
        raise BadValue("steps", f"must be a whole number of at least 1, got {steps}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise BadValue("lr", f"must be a positive number, got {lr}")
    if confidence is not None and not (math.isfinite(confidence) and 0 < confidence < 1):
        raise BadValue("confidence", f"must be strictly between 0 and 1, got {confidence}")
    if beta is not None and not (math.isfinite(beta) and beta >= 0):
        raise BadValue("beta", f"must be a number >= 0, got {beta}")
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise BadValue("optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")


def check_class(value, num_classes: int, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < num_classes:
        raise BadValue(param, f"must be a class 0-{num_classes - 1}, got {value}")
    return int(value)


def model_shape(model) -> tuple[tuple[int, ...], int]:
    """((H, W, C), K) of a logits model."""
    return tuple(int(d) for d in model.input_shape[1:]), int(model.output_shape[-1])


def as_batch(images, shape: tuple[int, ...], name: str) -> np.ndarray:
    """One image (H, W, C) or a batch (N, H, W, C) -> (N, H, W, C) float32; BadValue otherwise."""
    array = np.asarray(images, np.float32)
    if array.shape == tuple(shape) or (array.ndim == len(shape) - 1 and array.shape + (1,) == tuple(shape)):
        array = array.reshape((1,) + tuple(shape))
    if array.ndim != 4 or array.shape[1:] != tuple(shape) or len(array) == 0:
        raise BadValue(name, f"must be (N, {', '.join(map(str, shape))}) images, got shape {np.shape(images)}")
    if not np.all(np.isfinite(array)):
        raise BadValue(name, "holds NaN or infinite pixels")
    return array


# ---------------------------------------------------------------------------- the optimisation loop
def _tape(model, x, objective):
    """The one tape of every attack: logits (N, K) float32 of the pixels x, the per-image
    objective(logits, x) (N,), and the gradient of its sum with respect to x (N, H, W, C)."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.cast(model(x, training=False), tf.float32)
        value = objective(logits, x)
        # The sum keeps every image's gradient independent of the others and of the batch size.
        total = tf.reduce_sum(value)
    return logits, value, tape.gradient(total, x)


def _gradient(model, x, targets, anchor, beta):
    """Logits of x and the gradient of cross_entropy(targets) + beta * mean((x - anchor)^2), per image."""
    import tensorflow as tf

    def objective(logits, x):
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        return cross_entropy + beta * tf.reduce_mean(tf.square(x - anchor), axis=[1, 2, 3])

    logits, _, grad = _tape(model, x, objective)
    return logits, grad


def cached(model, key, build):
    """build(), made once per (model, key) and kept while the model lives (compiled functions)."""
    per_model = _COMPILED.setdefault(model, {})
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def _reached(logits, targets, odds_limit):
    """(N,) bool: predicted as its target with probability >= confidence, odds_limit = (1 - c) / c.

    p_t >= c  <=>  sum_{j != t} exp(l_j - l_t) <= (1 - c) / c. Summing the small terms directly keeps
    float32 accurate even for c = 0.99999, where 1 - log_softmax would be lost to rounding.
    """
    import tensorflow as tf

    target_logit = tf.gather(logits, targets, batch_dims=1)
    others = 1.0 - tf.one_hot(targets, tf.shape(logits)[1], dtype=logits.dtype)
    odds_against = tf.reduce_sum(tf.exp(logits - target_logit[:, None]) * others, axis=1)
    predicted = tf.argmax(logits, axis=1, output_type=tf.int32)
    return (predicted == targets) & (odds_against <= odds_limit)


def _compiled(model, optimizer: str = "adam"):
    """(step, run) compiled for `model` and `optimizer`, made once and retraced only for a new batch shape.

    step: one masked step over the whole batch. run: up to k steps in one tf.while_loop, leaving
    early once every image is done.
    """
    import tensorflow as tf

    per_model = _COMPILED.setdefault(model, {})
    if optimizer in per_model:
        return per_model[optimizer]

    @tf.function(reduce_retracing=True)
    def step(x, m, v, used, done, targets, anchor, beta, lr, odds_limit, low, high):
        """One masked step on every image not yet done. Returns the new (x, m, v, used, done)."""
        logits, grad = _gradient(model, x, targets, anchor, beta)
        done = done | _reached(logits, targets, odds_limit)
        active = tf.logical_not(done)
        used = used + tf.cast(active, tf.int32)
        mask = tf.cast(active, tf.float32)[:, None, None, None]
        if optimizer == "sign":  # a Python branch: each optimizer is its own compiled function
            return tf.clip_by_value(x - mask * lr * tf.sign(grad), low, high), m, v, used, done
        m = m + mask * (1.0 - ADAM_BETA1) * (grad - m)
        v = v + mask * (1.0 - ADAM_BETA2) * (tf.square(grad) - v)
        t = tf.cast(tf.maximum(used, 1), tf.float32)[:, None, None, None]  # this image's own step count
        m_hat = m / (1.0 - tf.pow(ADAM_BETA1, t))
        v_hat = v / (1.0 - tf.pow(ADAM_BETA2, t))
        x = x - mask * lr * m_hat / (tf.sqrt(v_hat) + ADAM_EPSILON)
        return tf.clip_by_value(x, low, high), m, v, used, done

    @tf.function(reduce_retracing=True)
    def run(k, x, m, v, used, done, *constants):
        """Up to k steps; stops as soon as every image is done. Returns (steps run, x, m, v, used, done)."""
        def cond(i, x, m, v, used, done):
            return (i < k) & tf.logical_not(tf.reduce_all(done))

        def body(i, x, m, v, used, done):
            return (i + 1,) + tuple(step(x, m, v, used, done, *constants))

        return tf.while_loop(cond, body, (tf.constant(0), x, m, v, used, done))

    per_model[optimizer] = (step, run)
    return step, run


def optimise(model, start: np.ndarray, targets: np.ndarray, *, steps: int, lr: float,
              confidence: float | None, clip: bool, optimizer: str = "adam", anchor: np.ndarray | None = None,
              beta: float = 0.0, check_every: int = 20,
              progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Up to `steps` masked steps from `start` (N, H, W, C) towards `targets` (N,).

    confidence None: no image stops early (each gets `steps` updates). Returns (images (N, H, W, C)
    float32, updates per image (N,) int64, steps the batch ran).
    """
    import tensorflow as tf

    _, run = _compiled(model, optimizer)
    n = len(start)
    x = tf.constant(start, tf.float32)
    state = (x, tf.zeros_like(x), tf.zeros_like(x), tf.zeros([n], tf.int32), tf.zeros([n], tf.bool))
    constants = (
        tf.constant(targets, tf.int32),
        tf.constant(np.zeros_like(start) if anchor is None else anchor, tf.float32),
        tf.constant(beta, tf.float32),
        tf.constant(lr, tf.float32),
        tf.constant(-1.0 if confidence is None else (1.0 - confidence) / confidence, tf.float32),
        tf.constant(0.0 if clip else -math.inf, tf.float32),
        tf.constant(1.0 if clip else math.inf, tf.float32),
    )
    steps_run = 0
    while steps_run < steps:
        k = min(check_every, steps - steps_run)
        ran, *state = run(tf.constant(k), *state, *constants)
        steps_run += int(ran)  # the one host sync per chunk
        images_done = int(tf.reduce_sum(tf.cast(state[4], tf.int32)))
        if progress is not None:
            progress(steps_run, images_done, n)
        if int(ran) < k:  # every image was done
            break
    return state[0].numpy(), state[3].numpy().astype(np.int64), steps_run


def start_noise(count: int, shape: tuple[int, ...], seed: int, clip: bool = True) -> np.ndarray:
    """Gaussian noise images (count, H, W, C) float32: mean NOISE_MEAN, std NOISE_STD, seeded
    (NumPy, so the same seed gives the same start on every machine); clipped to [0, 1] when `clip`."""
    noise = np.random.default_rng(seed).normal(NOISE_MEAN, NOISE_STD, (count,) + tuple(shape))
    return (np.clip(noise, 0.0, 1.0) if clip else noise).astype(np.float32)




def predict_proba(model, images: np.ndarray) -> np.ndarray:
    """Class probabilities (N, K) float64 re-predicted from the arrays a result returns."""

    return softmax(predict_logits(model, images))
