"""Auto-PGD (Croce & Hein, ICML 2020), the gradient attacks of AutoAttack, in L-infinity and L2.

PGD with momentum 0.75 and a step size that needs no tuning: it starts at 2 eps and halves at
checkpoints (after 22%, then 19%, 16%, ... of the iterations, never closer than 6%) wherever the
loss rose in fewer than rho = 75% of the steps since the last checkpoint, or neither improved nor
was halved at the last one; a halving also moves the image back to the best point found. Losses:

    ce      the cross-entropy to the label (APGD-CE)
    dlr     -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3): the difference of logits ratio, invariant
            to shifting and scaling the logits (APGD-DLR)
    dlr-t   -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2) towards target t, the (k+1)-th most likely
            class of the clean image, k = 1..target_classes (APGD-T)

As in the reference (fra31/auto-attack `autopgd_base.py`), every restart and every target runs only
on the images still classified right, and an image is fooled once any iterate is misclassified.
Beyond the reference: the iterations between two checkpoints are one compiled tf.while_loop, and
at each checkpoint (and after 1, 2, 4, 8 and 16 iterations, before the first) the images already
fooled leave the batch, so later iterations cost less; an image's result is its first misclassified
iterate either way.
`eot` > 1 averages that many gradients per step (expectation over transformation, for models with
randomness: AutoAttack's `rand` version).
"""
from __future__ import annotations

import time

import numpy as np

from kerascnn.attacks.bounded_results import bounded_result
from kerascnn.attacks.fgm import TINY, _labels, check_norm, clip_eta, direction, per_image, per_image_eps
from kerascnn.attacks.loop import Progress, as_batch, cached, check_settings, model_shape
from kerascnn.errors import BadValue
from kerascnn.model.batching import batch_size as fitting
from kerascnn.model.predict import predict_logits

LOSSES = ("ce", "dlr", "dlr-t")
NAMES = {"ce": "apgd-ce", "dlr": "apgd-dlr", "dlr-t": "apgd-t"}
MOMENTUM, RHO = 0.75, 0.75


def checkpoints(steps: int) -> list[int]:
    """The iterations (1-based counts) after which the step size may halve: the reference's schedule,
    first after max(0.22 steps, 1), each interval 0.03 steps shorter, never below 0.06 steps."""
    first, least, shrink = max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)
    out, k, at = [], first, first
    while at <= steps:
        out.append(at)
        k = max(k - shrink, least)
        at += k
    return out


def early_looks(steps: int) -> list[int]:
    """The iterations before the first checkpoint after which the images already fooled leave the
    batch: 1, 2, 4, 8, ... An image is done at its first misclassified iterate, and on a weak model
    most are fooled within a few steps, long before the first checkpoint (22% of the steps)."""
    marks = checkpoints(steps)
    first = marks[0] if marks else steps
    return [2 ** k for k in range(32) if 2 ** k < first]


def loss_values(logits, labels, loss: str, targets=None):
    """(N,) the loss APGD ascends, per image, from logits (N, K)."""
    import tensorflow as tf

    k = logits.shape[-1] or tf.shape(logits)[-1]
    top = tf.sort(logits, axis=1, direction="DESCENDING")
    own = tf.gather(logits, labels, batch_dims=1)

    def ranked(i):  # the (i+1)-th largest logit, the smallest where there are fewer classes
        return top[:, min(i, int(k) - 1)]

    if loss == "ce":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    if loss == "dlr":
        other = tf.where(tf.equal(tf.argmax(logits, axis=1, output_type=labels.dtype), labels), ranked(1), ranked(0))
        return -(own - other) / (ranked(0) - ranked(2) + TINY)
    return -(own - tf.gather(logits, targets, batch_dims=1)) / (ranked(0) - 0.5 * (ranked(2) + ranked(3)) + TINY)


def _evaluate(model, x, labels, targets, loss: str, eot: int):
    """(logits, loss (N,), gradient of the loss) at x, the gradient averaged over `eot` passes."""
    import tensorflow as tf

    grad = tf.zeros_like(x)
    for _ in range(eot):  # a Python loop: eot is fixed per compiled function
        # One pass after the other (not all at once, as the graph would allow): a batch's memory, not eot times it.
        with tf.control_dependencies([grad]), tf.GradientTape() as tape:
            tape.watch(x)
            logits = tf.cast(model(x, training=False), tf.float32)
            value = loss_values(logits, labels, loss, targets)
            total = tf.reduce_sum(value)
        grad += tape.gradient(total, x)
    return logits, value, grad / float(eot)


def project(x, candidate, eps, norm: str):
    """candidate moved into the eps-ball around x and into [0, 1]."""
    import tensorflow as tf

    return tf.clip_by_value(x + clip_eta(candidate - x, norm, eps), 0.0, 1.0)


def checkpoint(state: dict, k, rho: float = RHO) -> dict:
    """The reference's check after k iterations: where the loss rose in at most rho * k of them, or
    neither improved since the last check nor was halved there, halve the step and go back to the
    best point (with its gradient). Returns the new state."""
    import tensorflow as tf

    oscillating = tf.cast(state["increases"], tf.float32) <= tf.cast(k, tf.float32) * rho
    stalled = tf.logical_not(state["reduced"]) & (state["best_loss_at_check"] >= state["best_loss"])
    halve = oscillating | stalled
    x = state["x"]
    out = dict(state)
    out.update(step=tf.where(halve, state["step"] / 2.0, state["step"]),
               adv=tf.where(per_image(halve, x) > 0, state["best"], state["adv"]),
               grad=tf.where(per_image(halve, x) > 0, state["best_grad"], state["grad"]),
               reduced=halve, best_loss_at_check=state["best_loss"], increases=tf.zeros_like(state["increases"]))
    return out


def _segment(model, norm: str, loss: str, eot: int, state: dict, length, first_iteration):
    """`length` iterations from `state` (dict of tensors, one row per image); returns the new state."""
    import tensorflow as tf

    x, eps, labels, targets = state["x"], state["eps"], state["labels"], state["targets"]
    keys = ("adv", "old", "grad", "best", "best_grad", "best_loss", "prev_loss", "increases", "fooled", "found")

    def body(i, adv, old, grad, best, best_grad, best_loss, prev_loss, increases, fooled, found):
        a = tf.where(first_iteration & (i == 0), 1.0, MOMENTUM)
        step = per_image(state["step"], x)
        z = project(x, adv + step * direction(grad, norm), eps, norm)
        new = project(x, adv + a * (z - adv) + (1.0 - a) * (adv - old), eps, norm)
        logits, value, new_grad = _evaluate(model, new, labels, targets, loss, eot)
        wrong = tf.argmax(logits, axis=1, output_type=labels.dtype) != labels
        found = tf.where(per_image(wrong & ~fooled, x) > 0, new, found)
        better = value > best_loss
        increases += tf.cast(value > prev_loss, tf.int32)
        return (i + 1, new, adv, new_grad, tf.where(per_image(better, x) > 0, new, best),
                tf.where(per_image(better, x) > 0, new_grad, best_grad), tf.where(better, value, best_loss),
                value, increases, fooled | wrong, found)

    loop = tf.while_loop(lambda i, *rest: i < length, body, (tf.constant(0),) + tuple(state[k] for k in keys))
    out = dict(state)
    out.update(zip(keys, loop[1:]))
    return out


def _start(model, norm: str, loss: str, eot: int, x, labels, targets, eps, seed):
    """The state at a random point of the ball (the reference's: a uniform draw scaled to norm eps)."""
    import tensorflow as tf

    if norm == "linf":
        t = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0)
        t = t / per_image(tf.reduce_max(tf.abs(t), axis=[1, 2, 3]) + TINY, x)
    else:
        t = tf.random.stateless_normal(tf.shape(x), seed)
        t = t / per_image(tf.sqrt(tf.reduce_sum(tf.square(t), axis=[1, 2, 3])) + TINY, x)
    adv = tf.clip_by_value(x + per_image(eps, x) * t, 0.0, 1.0)
    logits, value, grad = _evaluate(model, adv, labels, targets, loss, eot)
    wrong = tf.argmax(logits, axis=1, output_type=labels.dtype) != labels
    n = tf.shape(x)[0]
    return {"x": x, "eps": eps, "labels": labels, "targets": targets, "adv": adv, "old": adv, "grad": grad,
            "best": adv, "best_grad": grad, "best_loss": value, "prev_loss": value,
            "increases": tf.zeros([n], tf.int32), "fooled": wrong, "found": adv, "step": 2.0 * eps,
            "reduced": tf.ones([n], tf.bool), "best_loss_at_check": value}


def _compile(model, norm: str, loss: str, eot: int):
    import tensorflow as tf

    image = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)
    per = tf.TensorSpec((None,), tf.float32)
    labels = tf.TensorSpec((None,), tf.int32)
    names = ("x", "eps", "labels", "targets", "adv", "old", "grad", "best", "best_grad", "best_loss", "prev_loss",
             "increases", "fooled", "found", "step", "reduced", "best_loss_at_check")
    specs = dict(zip(names, (image, per, labels, labels, image, image, image, image, image, per, per,
                             tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.bool), image, per,
                             tf.TensorSpec((None,), tf.bool), per)))

    @tf.function(input_signature=[image, labels, labels, per, tf.TensorSpec((2,), tf.int64)])
    def start(x, labels, targets, eps, seed):
        return _start(model, norm, loss, eot, x, labels, targets, eps, seed)

    @tf.function(input_signature=[specs, tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.bool),
                                  tf.TensorSpec((), tf.bool), tf.TensorSpec((), tf.int32)])
    def segment(state, length, first, check, interval):
        """`length` iterations; then, where `check`, the checkpoint of the `interval` iterations since the last."""
        state = _segment(model, norm, loss, eot, state, length, first)
        return tf.cond(check, lambda: checkpoint(state, interval), lambda: state)

    return start, segment


def _single_run(model, norm, loss, eot, x, labels, targets, eps, steps, seed,
                best: bool = False) -> tuple[np.ndarray, np.ndarray, list]:
    """One APGD run on a batch: (fooled (N,) bool, adversarial images (N, ...), step sizes at the end).
    best: run every step on every image and return each one's highest-loss point instead."""
    import tensorflow as tf

    start, segment = cached(model, ("apgd", norm, loss, eot), lambda: _compile(model, norm, loss, eot))
    state = start(tf.constant(x), tf.constant(labels, tf.int32), tf.constant(targets, tf.int32),
                  tf.constant(eps), tf.constant(seed, tf.int64))
    rows = np.arange(len(x))  # which of the batch's images the state still holds
    fooled, found, steps_left = np.zeros(len(x), bool), x.copy(), np.zeros(len(x), np.float32)
    marks = checkpoints(steps)
    done, last_mark = 0, 0
    for end in sorted(set(([] if best else early_looks(steps)) + marks + [steps])):
        check = end in marks
        state = segment(state, tf.constant(end - done, tf.int32), tf.constant(done == 0), tf.constant(check),
                        tf.constant(end - last_mark, tf.int32))
        done, last_mark = end, end if check else last_mark
        if best:
            continue
        now = state["fooled"].numpy()
        found[rows[now]] = state["found"].numpy()[now]
        fooled[rows[now]] = True
        steps_left[rows] = state["step"].numpy()
        if now.all():
            break
        if now.any():  # the fooled images leave the batch: later iterations cost less
            keep = tf.constant(~now)
            state = {key: tf.boolean_mask(value, keep) for key, value in state.items()}
            rows = rows[~now]
    if best:
        found, steps_left = state["best"].numpy(), state["step"].numpy()
        fooled = predict_logits(model, found).argmax(axis=1) != labels
    return fooled, found, steps_left


def apgd(model, images: np.ndarray, labels, eps, *, norm: str = "linf", loss: str = "ce", target_classes: int = 9,
         steps: int = 100, restarts: int = 1, eot: int = 1, seed: int = 0, batch_size: int | None = None,
         best_loss: bool = False, progress: Progress | None = None):
    """APGD on a batch: attacks.BoundedResult of images within eps of `images` (N, H, W, C) in [0, 1].

    labels (N,): true classes; eps one radius or one per image; loss "ce", "dlr" or "dlr-t" (then
    `target_classes` targets, each run on the images not yet fooled). Images the model gets wrong
    clean are returned unchanged. Fooled: re-predicted as another class than the label.
    best_loss: return each image's highest-loss point after all the steps (the reference's
    `best_loss=True`), not the first that fools the model: for a randomized model, whose single
    prediction is no verdict (certify's attack on the smoothed classifier).
    """
    shape, num_classes = model_shape(model)
    check_norm(norm)
    if loss not in LOSSES:
        raise BadValue("loss", f"must be one of {', '.join(LOSSES)}, got {loss!r}")
    check_settings(steps=steps)
    for name, value in (("restarts", restarts), ("eot", eot), ("target_classes", target_classes)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise BadValue(name, f"must be a whole number of at least 1, got {value}")
    originals = as_batch(images, shape, "images")
    labels = _labels(labels, len(originals), num_classes)
    radii = per_image_eps(eps, len(originals))
    batch_size = batch_size or fitting(model, gradients=True)
    begin = time.perf_counter()
    logits = predict_logits(model, originals)
    ranking = np.argsort(-logits, axis=1, kind="stable")
    fooled = logits.argmax(axis=1) != labels  # wrong clean: nothing to attack
    adversarial = originals.copy()
    final_step = np.full(len(originals), np.nan, np.float32)
    runs = [(r, t) for t in (range(1, min(target_classes, num_classes - 1) + 1) if loss == "dlr-t" else [0])
            for r in range(restarts)]
    record = []
    for n, (restart, rank) in enumerate(runs):
        todo = np.flatnonzero(~fooled)
        for i in range(0, len(todo), batch_size):
            part = todo[i:i + batch_size]
            hit, found, step = _single_run(model, norm, loss, int(eot), originals[part], labels[part],
                                           ranking[part, rank], radii[part], int(steps),
                                           np.array([seed, 7919 * n + i], np.int64), best_loss)
            adversarial[part[hit]] = found[hit]
            fooled[part[hit]] = True
            final_step[part] = np.where(hit, np.nan, step)  # a fooled image stops where it was fooled
            if progress is not None:
                progress(n * steps + steps * min(i + batch_size, len(todo)) // max(len(todo), 1),
                         int(fooled.sum()), len(originals))
        record.append(~fooled)
    settings = {"norm": norm, "loss": loss, "steps": steps, "restarts": restarts, "eot": eot, "seed": seed,
                "target_classes": min(target_classes, num_classes - 1) if loss == "dlr-t" else None,
                "momentum": MOMENTUM, "rho": RHO, "checkpoints": checkpoints(steps),
                # the step size after the last iteration, over the images no run fooled (None: all fooled)
                "final_step_over_eps": _finite_mean(final_step / np.maximum(radii, 1e-12))}
    return bounded_result(model, NAMES[loss], norm, radii, originals, adversarial, labels, False, np.array(record),
                          time.perf_counter() - begin, settings)


def _finite_mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None
