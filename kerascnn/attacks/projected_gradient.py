"""Projected gradient descent (Madry et al. 2018): from a random point of the eps-ball, repeated
FGM steps of size `step`, each projected back onto the ball and into [0, 1]; a loop of `fgm_step`
and `clip_eta` (fgm.py), as cleverhans' projected_gradient_descent is. Without the random start it
is the basic iterative method (Kurakin et al. 2017).

`pgd_images` is the loop on tensors (adversarial training calls it inside its compiled step); `pgd`
runs it on arrays, in batches, with restarts. An untargeted image stops moving at the first step
where the model no longer predicts its label (a targeted one: where it predicts its target), so
what is returned is the first point found that fools the model, which no later step can undo, and
a batch whose images are all done ends early. Restarts attack again, from a new random point, only
the images still not fooled; an image's result is replaced only when the model, re-predicting the
returned arrays, says the new one fools it, so more restarts can never raise the accuracy.
"""
from __future__ import annotations

import time

import numpy as np

from kerascnn.attacks.bounded_results import bounded_result
from kerascnn.attacks.fgm import _labels, check_norm, clip_eta, fgm_step, norm_of, per_image, per_image_eps
from kerascnn.attacks.loop import Progress, as_batch, cached, check_settings, model_shape
from kerascnn.errors import BadValue
from kerascnn.model.batching import batch_size as fitting
from kerascnn.model.predict import predict_logits

#: Madry et al.'s MNIST step: 0.01 at eps 0.3, 40 steps (the step is eps / 30 at every eps).
STEP_FRACTION = 1 / 30


def random_start(x, eps, norm: str, seed):
    """A uniformly random point of each image's eps-ball (linf: a uniform cube; l2: a uniform ball),
    kept in [0, 1]. seed: a shape-(2,) integer tensor (stateless: the same seed, the same start)."""
    import tensorflow as tf

    if norm == "linf":
        eta = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0) * per_image(eps, x)
    else:
        gaussian = tf.random.stateless_normal(tf.shape(x), seed)
        unit = gaussian / per_image(tf.maximum(norm_of(gaussian, "l2"), 1e-12), x)
        dims = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
        radius = tf.random.stateless_uniform(tf.shape(x)[:1], seed + 1) ** (1.0 / dims) * tf.cast(eps, tf.float32)
        eta = unit * per_image(radius, x)
    return tf.clip_by_value(x + eta, 0.0, 1.0)


def pgd_images(model, x, labels, eps, step, steps, norm: str, *, targeted: bool = False, rand_init: bool = True,
               seed=None, stop_when_fooled: bool = True, done=None):
    """`steps` PGD steps from x (N, H, W, C) in [0, 1] -> (images, done (N,) bool), as tensors.

    eps, step: scalars or (N,) per image. stop_when_fooled: an image is frozen from the first step
    where it is fooled (done); otherwise every image takes every step (adversarial training). `done`
    marks images not to move at all (None: none).
    """
    import tensorflow as tf

    labels = tf.cast(labels, tf.int32)
    start = random_start(x, eps, norm, seed) if rand_init else x
    done = tf.zeros(tf.shape(x)[:1], tf.bool) if done is None else done

    def body(i, x_adv, done):
        stepped, logits = fgm_step(model, x_adv, labels, step, norm, targeted)
        if stop_when_fooled:
            predicted = tf.argmax(logits, axis=1, output_type=tf.int32)
            done = done | ((predicted == labels) if targeted else (predicted != labels))
        moved = tf.clip_by_value(x + clip_eta(stepped - x, norm, eps), 0.0, 1.0)
        return i + 1, tf.where(per_image(done, x) > 0, x_adv, moved), done

    def cond(i, x_adv, done):
        return (i < steps) & tf.logical_not(tf.reduce_all(done)) if stop_when_fooled else i < steps

    start = tf.where(per_image(done, x) > 0, x, start)
    _, images, done = tf.while_loop(cond, body, (tf.constant(0), start, done))
    return images, done


def pgd(model, images: np.ndarray, labels, eps, *, norm: str = "linf", steps: int = 40,
        step_fraction: float = STEP_FRACTION, rand_init: bool = True, restarts: int = 1, seed: int = 0,
        targeted: bool = False, stop_when_fooled: bool = True, batch_size: int | None = None,
        progress: Progress | None = None):
    """PGD on a batch: attacks.BoundedResult of images within eps of `images` (N, H, W, C) in [0, 1].

    labels (N,): true classes, or targets when `targeted`; eps: one radius or one per image; the
    step is step_fraction * eps. restarts: attempts from independent random starts (each one only on
    the images the earlier ones did not fool). stop_when_fooled False: every image takes every step,
    going on past the boundary (examples that transfer better to other models). progress(steps_done,
    images_fooled, N) after each batch.
    """

    shape, num_classes = model_shape(model)
    check_norm(norm)
    check_settings(steps=steps)
    _check_count(restarts, "restarts")
    if not (np.isfinite(step_fraction) and step_fraction > 0):
        raise BadValue("step_fraction", f"must be a positive number, got {step_fraction}")
    originals = as_batch(images, shape, "images")
    labels = _labels(labels, len(originals), num_classes)
    radii = per_image_eps(eps, len(originals))
    batch_size = batch_size or fitting(model, gradients=True)
    flags = (norm, bool(targeted), bool(rand_init), bool(stop_when_fooled))
    run = cached(model, ("pgd",) + flags, lambda: _compile_pgd(model, *flags))
    begin = time.perf_counter()
    current = originals.copy()
    fooled = np.zeros(len(originals), bool)
    record = []  # after each restart: not fooled yet (untargeted: still predicted as the label)
    for restart in range(restarts):
        for i in range(0, len(originals), batch_size):
            part = slice(i, i + batch_size)
            if fooled[part].all():
                continue
            attempt = run(originals[part], labels[part], radii[part], radii[part] * np.float32(step_fraction),
                          np.int32(steps), fooled[part], np.array([seed, restart * 7919 + i], np.int64))
            candidate = attempt.numpy()
            now = _fools(model, candidate, labels[part], targeted)
            # The first attempt is kept whole (the images it did not fool show where it ended);
            # a restart replaces only the images it fools that no earlier attempt did.
            take = now & ~fooled[part] if restart else np.ones(len(candidate), bool)
            current[part][take] = candidate[take]
            fooled[part] |= now & take
            if progress is not None:
                progress(restart * steps + steps * min(i + batch_size, len(originals)) // len(originals),
                         int(fooled.sum()), len(originals))
        record.append(~fooled)
    settings = {"norm": norm, "steps": steps, "step_fraction": step_fraction, "rand_init": rand_init,
                "restarts": restarts, "seed": seed, "targeted": targeted, "loss": "cross-entropy",
                "stops": "at the first step that fools the model" if stop_when_fooled else "after every step"}
    return bounded_result(model, "pgd", norm, radii, originals, current, labels, targeted, np.array(record),
                          time.perf_counter() - begin, settings)


def _compile_pgd(model, norm: str, targeted: bool, rand_init: bool, stop_when_fooled: bool):
    import tensorflow as tf

    # One trace for every batch (eps values, restarts and the last partial batch change only sizes).
    signature = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int64),
                 tf.TensorSpec((None,), tf.float32), tf.TensorSpec((None,), tf.float32), tf.TensorSpec((), tf.int32),
                 tf.TensorSpec((None,), tf.bool), tf.TensorSpec((2,), tf.int64)]

    @tf.function(input_signature=signature)
    def run(x, labels, eps, step, steps, done, seed):
        return pgd_images(model, x, labels, eps, step, steps, norm, targeted=targeted, rand_init=rand_init,
                          seed=seed, stop_when_fooled=stop_when_fooled, done=done)[0]

    return run


def _predicted(model, images: np.ndarray) -> np.ndarray:

    return predict_logits(model, images).argmax(axis=1)


def _fools(model, images: np.ndarray, labels: np.ndarray, targeted: bool) -> np.ndarray:
    hit = _predicted(model, images) == labels
    return hit if targeted else ~hit


def _check_count(value, param: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise BadValue(param, f"must be a whole number of at least 1, got {value}")
    return int(value)
