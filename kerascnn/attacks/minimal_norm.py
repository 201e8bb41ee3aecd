"""The smallest perturbation that changes a prediction (or reaches a target): the fast minimum-norm
attack, FMN (Pintor, Roli, Brendel and Biggio, NeurIPS 2021), in L2 and L-infinity.

FMN keeps, per image, a ball of radius eps and takes normalised gradient steps on a logit margin
inside it, while eps adapts: outside the goal, eps first jumps to the first-order estimate of the
distance to the boundary (current norm + margin / dual norm of the gradient), then grows by a factor
(1 + gamma); once the goal is met, eps shrinks by (1 - gamma) and never exceeds the smallest norm
found. Step size alpha and gamma decay along a cosine. The smallest perturbation that met the goal
is kept; a bisection along it (towards the original) then takes it to the boundary.

Goals (`margin`; met where it is < 0):

    untargeted         logit of the label - the largest other logit
    target t           the largest other logit - logit of t
    target t, p >= c   logsumexp of the other logits - logit of t - log((1 - c) / c):
                       negative exactly when softmax(t) > c (the noise attack's goal)

On a linear model without the [0, 1] box the first eps is already the exact distance to the nearest
boundary, |w_i.x + b_i - w_j.x - b_j| / ||w_i - w_j|| (tests/test_robustness.py checks that closed form).
"""
from __future__ import annotations

import math
import time

import numpy as np

from kerascnn.attacks.bounded_results import minimal_result
from kerascnn.attacks.fgm import _labels, check_norm, clip_eta, norm_of, per_image
from kerascnn.attacks.loop import (
    Progress,
    _tape,
    as_batch,
    cached,
    check_class,
    check_settings,
    model_shape,
)
from kerascnn.errors import BadValue
from kerascnn.model.batching import batch_size as fitting
from kerascnn.model.predict import predict_logits, softmax

#: FMN's published settings: alpha from ALPHA to ALPHA / 100, gamma from 0.05 to 0.001.
ALPHA = {"l2": 1.0, "linf": 10.0}
GAMMA, GAMMA_FINAL = 0.05, 0.001
#: Halvings of the bisection along the best perturbation found.
BISECTION_STEPS = 12


def margin(logits, labels, targeted: bool, odds_limit):
    """(N,) the goal's margin (< 0: met). odds_limit (1 - c) / c for a confidence goal, else <= 0."""
    import tensorflow as tf

    own = tf.gather(logits, labels, batch_dims=1)
    others = tf.where(tf.one_hot(labels, tf.shape(logits)[1]) > 0, -np.inf, logits)
    if not targeted:
        return own - tf.reduce_max(others, axis=1)
    if odds_limit > 0:
        return tf.reduce_logsumexp(others, axis=1) - own - math.log(odds_limit)
    return tf.reduce_max(others, axis=1) - own


def _dual_norm(grad, norm: str):
    """(N,) the norm dual to `norm` (l2 -> l2, linf -> l1): turns a margin into a distance."""
    import tensorflow as tf

    axes = list(range(1, len(grad.shape)))
    if norm == "linf":
        return tf.reduce_sum(tf.abs(grad), axis=axes)
    return tf.sqrt(tf.reduce_sum(tf.square(grad), axis=axes))


def fmn_images(model, x, labels, steps, norm: str, targeted: bool, odds_limit: float, alpha: float):
    """FMN on tensors: (best images, their norms (N,), inf where the goal was never met)."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    worst = norm_of(tf.maximum(x, 1.0 - x), norm)  # no perturbation in [0, 1] is longer than this
    objective = lambda logits, images: margin(logits, labels, targeted, odds_limit)  # noqa: E731

    def schedule(start, end, i):
        return end + (start - end) * (1.0 + tf.cos(math.pi * tf.cast(i, tf.float32) / float(steps))) / 2.0

    def consider(delta, value, best, best_norm, found):
        size = norm_of(delta, norm)
        better = (value < 0) & (size < best_norm)
        return tf.where(per_image(better, x) > 0, x + delta, best), tf.where(better, size, best_norm), found | (value < 0)

    def body(i, delta, eps, best, best_norm, found):
        _, value, grad = _tape(model, x + delta, objective)
        best, best_norm, found = consider(delta, value, best, best_norm, found)
        # Pixels at 0 that the step would darken, or at 1 that it would brighten, cannot move: without
        # them the step and the distance estimate are those of the box, not of the whole space.
        grad = tf.where(((x + delta <= 0.0) & (grad > 0)) | ((x + delta >= 1.0) & (grad < 0)), 0.0, grad)
        gamma = schedule(GAMMA, GAMMA_FINAL, i)
        first_guess = norm_of(delta, norm) + tf.abs(value) / tf.maximum(_dual_norm(grad, norm), 1e-12)
        # Not there yet: at least the first-order estimate, and (our change to FMN) growing by
        # (1 + gamma) even while no point meets the goal, where the estimate alone can stall
        # against the box for ever.
        eps = tf.where(value < 0, tf.minimum(eps * (1.0 - gamma), best_norm),
                       tf.where(found, eps * (1.0 + gamma), tf.maximum(first_guess, eps * (1.0 + gamma))))
        eps = tf.minimum(eps, worst)
        unit = grad / per_image(tf.maximum(_dual_norm(grad, "l2"), 1e-12), x)
        delta = clip_eta(delta - schedule(alpha, alpha / 100.0, i) * unit, norm, eps)
        delta = tf.clip_by_value(x + delta, 0.0, 1.0) - x
        return i + 1, delta, eps, best, best_norm, found

    start = (tf.constant(0), tf.zeros_like(x), tf.zeros([n]), x, tf.fill([n], np.inf), tf.zeros([n], tf.bool))
    _, delta, _, best, best_norm, found = tf.while_loop(lambda i, *rest: i < steps, body, start)
    _, value, _ = _tape(model, x + delta, objective)  # the last step's point counts too
    best, best_norm, _ = consider(delta, value, best, best_norm, found)
    return best, best_norm


def minimal(model, images: np.ndarray, labels=None, *, norm: str = "l2", target: int | None = None,
            confidence: float | None = None, steps: int = 300, alpha: float | None = None, batch_size: int | None = None,
            progress: Progress | None = None):
    """For each image (N, H, W, C) in [0, 1], the smallest perturbation in `norm` found by FMN that
    changes the prediction from `labels` (N,) (None: the clean predictions), or with `target` that
    makes the model predict it (with probability >= `confidence` when given).

    Returns attacks.MinimalResult: the perturbed images (the originals where the goal was never met),
    each perturbation's norm (0 where the original already meets the goal, inf where none was found),
    and what the model says, re-predicted from the returned arrays.
    """

    shape, num_classes = model_shape(model)
    check_norm(norm)
    check_settings(steps=steps, confidence=confidence)
    if target is not None:
        check_class(target, num_classes, "target")
    elif confidence is not None:
        raise BadValue("confidence", "needs a target (an untargeted goal is only a changed prediction)")
    alpha = ALPHA[norm] if alpha is None else alpha
    if not (math.isfinite(alpha) and alpha > 0):
        raise BadValue("alpha", f"must be a positive number, got {alpha}")
    originals = as_batch(images, shape, "images")
    logits = predict_logits(model, originals)
    labels = logits.argmax(axis=1) if labels is None else _labels(labels, len(originals), num_classes)
    goal = labels if target is None else np.full(len(originals), int(target), np.int64)
    odds = 0.0 if confidence is None else (1.0 - confidence) / confidence
    run = cached(model, ("fmn", norm, target is not None, odds), lambda: _compile(model, norm, target is not None, odds,
                                                                                  float(alpha)))
    begin = time.perf_counter()
    batch_size = batch_size or fitting(model, gradients=True, cap=500)
    # An image that meets the goal clean keeps itself (norm 0) through all the steps: FMN's first step
    # stores it and nothing is smaller. Only those clearly past (by CLEARANCE, so that the loop's own
    # float32 evaluation agrees) skip the loop; it used to run every step on them.
    todo = np.flatnonzero(~_clearly_met(logits, goal, target is not None, odds))
    best = originals.copy()
    for i in range(0, len(todo), batch_size):
        rows = todo[i:i + batch_size]
        best[rows] = run(originals[rows], goal[rows], np.int32(steps))[0].numpy()
        if progress is not None:  # images done of all N, the skipped ones counted as done
            done = len(originals) - len(todo) + i + len(rows)
            progress(steps * done // len(originals), done, len(originals))
    if progress is not None and not len(todo):
        progress(steps, len(originals), len(originals))
    best = _bisect(model, originals, best, goal, target is not None, odds)
    settings = {"method": "FMN (Pintor et al. 2021) + bisection to the boundary", "norm": norm, "steps": steps,
                "alpha": alpha, "gamma": [GAMMA, GAMMA_FINAL], "target": target, "confidence": confidence}
    return minimal_result(model, norm, originals, best, labels, target, confidence, time.perf_counter() - begin,
                          settings)


def _compile(model, norm: str, targeted: bool, odds: float, alpha: float):
    import tensorflow as tf

    # One trace for every batch size: the signature leaves the batch dimension open.
    signature = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32), tf.TensorSpec((None,), tf.int64),
                 tf.TensorSpec((), tf.int32)]

    @tf.function(input_signature=signature)
    def run(x, labels, steps):
        return fmn_images(model, x, tf.cast(labels, tf.int32), steps, norm, targeted, odds, alpha)

    return run


#: How far past the boundary (relative to the logit) a bisected point must stay: two evaluations of one
#: model (another batch size, the user's own model beside the folded one) differ by ~1e-6 there.
CLEARANCE = 1e-4


def _clearly_met(logits: np.ndarray, goal: np.ndarray, targeted: bool, odds: float) -> np.ndarray:
    """(N,) bool: `margin` of the logits below -CLEARANCE * (1 + |goal's logit|) (computed in float64); with
    odds 0, the deciding logit gap (the goal's over the others targeted, the others' over the label's
    untargeted) above CLEARANCE * (1 + |logit|)."""
    logits = logits.astype(np.float64)
    rows = np.arange(len(goal))
    own = logits[rows, goal]
    others = logits.copy()
    others[rows, goal] = -np.inf
    if not targeted:
        value = own - others.max(axis=1)
    elif odds > 0:
        top = others.max(axis=1)
        value = top + np.log(np.exp(others - top[:, None]).sum(axis=1)) - own - math.log(odds)
    else:
        value = others.max(axis=1) - own
    return value < -CLEARANCE * (1.0 + np.abs(own))


def meets_goal(logits: np.ndarray, goal: np.ndarray, targeted: bool, odds: float) -> np.ndarray:
    """(N,) bool, from the model's own logits of the arrays (predict_logits, the function results use;
    their softmax is predict_proba's)."""

    probabilities = softmax(logits)
    predicted = probabilities.argmax(axis=1)
    if not targeted:
        return predicted != goal
    hit = predicted == goal
    if odds > 0:
        hit &= probabilities[np.arange(len(goal)), goal] >= 1.0 / (1.0 + odds)
    return hit


def _bisect(model, originals: np.ndarray, best: np.ndarray, goal: np.ndarray, targeted: bool,
            odds: float) -> np.ndarray:
    """Each perturbation scaled down along its own direction, by bisection, to the smallest fraction
    that still meets the goal as re-predicted; those that do not meet it are returned unchanged."""
    delta = best - originals
    low = np.zeros(len(best), np.float32)
    high = np.where(meets_goal(predict_logits(model, best), goal, targeted, odds), 1.0, np.nan).astype(np.float32)
    ok = ~np.isnan(high)
    for _ in range(BISECTION_STEPS):
        middle = (low + np.nan_to_num(high, nan=1.0)) / 2
        moved = originals + middle[:, None, None, None] * delta
        # one forward pass for both verdicts: the goal met as re-predicted, and clearly past the boundary
        logits = predict_logits(model, moved)
        meets = meets_goal(logits, goal, targeted, odds) & _clearly_met(logits, goal, targeted, 0.0)
        high = np.where(ok & meets, middle, high)
        low = np.where(ok & ~meets, middle, low)
    scale = np.where(ok, np.nan_to_num(high, nan=1.0), 1.0)[:, None, None, None]
    return np.clip(originals + scale * delta, 0.0, 1.0).astype(np.float32)
