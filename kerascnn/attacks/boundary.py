"""FAB, the fast adaptive boundary attack (Croce & Hein, ICML 2020): a minimal-norm attack, in
L-infinity and L2, targeted (FAB-T, AutoAttack's) or not.

Each iteration linearises the decision boundary between the label y and a class j at the current
point x1 (z_j - z_y ~ df + dg . (z - x1) = 0; untargeted: the j whose linearised boundary is
nearest in the norm), projects both x1 and the original x0 onto that hyperplane inside [0, 1], and
steps to a convex combination of the two projections, overshooting by eta = 1.05 and leaning
towards x0 by alpha = min(|d1| / (|d1| + |d2|), alpha_max = 0.1). Where the point is adversarial,
the smallest one so far is kept and the point is pulled back towards x0 (beta = 0.9).

Targets of FAB-T are the 2nd, 3rd, ... most likely classes of the clean image; restarts after the
first start from a random point at half the radius (the smaller of eps and the best norm found).
The hyperplane-and-box projection is solved here by bisection on the one scalar that parameterises
its solution (linf: d_i = clip(t sign(w_i), box); L2: d_i = clip(lambda w_i, box); w.d is monotone
in t and lambda), not by the reference's sort-based exact routine (fab_projections.py): 40
halvings reach float32 precision, it is a few vectorised lines, and tests/test_fab.py checks it
against a brute-force solution.
"""
from __future__ import annotations

import time

import numpy as np

from kerascnn.attacks.bounded_results import minimal_result
from kerascnn.attacks.fgm import TINY, _labels, check_norm, per_image, per_image_eps
from kerascnn.attacks.loop import Progress, as_batch, cached, check_settings, model_shape
from kerascnn.errors import BadValue
from kerascnn.model.batching import batch_size as fitting
from kerascnn.model.predict import predict_logits

ALPHA_MAX, ETA, BETA = 0.1, 1.05, 0.9
HALVINGS = 40


def project(points, w, b, norm: str):
    """(N, D) the smallest change d (in `norm`) with w . (p + d) = b and p + d in [0, 1], for rows
    p of `points` (N, D), w (N, D), b (N,); where no point of the box reaches the hyperplane, the box
    point that comes nearest."""
    import tensorflow as tf

    c = b - tf.reduce_sum(w * points, axis=1)
    direction = tf.sign(c)[:, None] * w  # move along +-w so that w . d grows towards |c|
    low, high = -points, 1.0 - points
    # Each coordinate moves along its sign of `direction` until it meets the box: w . d as a function of
    # the scalar is sum_i |direction_i| min(step_i(t), reach_i), with reach_i the room on that side. That
    # form gives the same float32 terms as direction_i * clip(step_i(t) sign_i, low_i, high_i) (a sign
    # flip and min/max with 0 on the right side of each bound are exact) in half the operations per
    # halving; the halvings took about 30% of FAB's time.
    size = tf.abs(direction)
    reach = tf.where(direction > 0, high, -low)

    if norm == "linf":
        def change(t):
            return tf.clip_by_value(t[:, None] * tf.sign(direction), low, high)

        def progress(t):
            return tf.reduce_sum(size * tf.minimum(t[:, None], reach), axis=1)
        lo, hi = tf.zeros_like(c), tf.ones_like(c)
    else:
        def change(t):
            return tf.clip_by_value(t[:, None] * direction, low, high)

        def progress(t):
            return tf.reduce_sum(size * tf.minimum(t[:, None] * size, reach), axis=1)
        length = tf.reduce_sum(tf.square(w), axis=1)
        lo = tf.abs(c) / tf.maximum(length, TINY)  # the box can only make lambda larger
        far = tf.where(tf.abs(direction) > TINY, tf.maximum(-low, high) / tf.maximum(tf.abs(direction), TINY), 0.0)
        hi = tf.maximum(tf.reduce_max(far, axis=1), lo)

    def body(i, lo, hi):
        mid = (lo + hi) / 2 if norm == "linf" else tf.sqrt(tf.maximum(lo, TINY) * hi)
        short = progress(mid) < tf.abs(c)
        return i + 1, tf.where(short, mid, lo), tf.where(short, hi, mid)

    _, lo, hi = tf.while_loop(lambda i, lo, hi: i < HALVINGS, body, (tf.constant(0), lo, hi))
    return tf.where((tf.abs(c) > 0)[:, None], change(hi), tf.zeros_like(points))


def _differences(model, x, labels, targets, targeted: bool, num_classes: int):
    """(df (N,), dg (N, ...)): z_j - z_y and its gradient at x, for the target j (FAB-T) or for the
    class whose linearised boundary is nearest (untargeted), with the dual norm `dual`."""
    import tensorflow as tf

    if targeted:
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tf.cast(model(x, training=False), tf.float32)
            diff = tf.gather(logits, targets, batch_dims=1) - tf.gather(logits, labels, batch_dims=1)
        return diff, tape.gradient(diff, x), logits
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.cast(model(x, training=False), tf.float32)
    jacobian = tape.batch_jacobian(logits, x)  # (N, K, H, W, C)
    diff = logits - tf.gather(logits, labels, batch_dims=1)[:, None]
    grads = jacobian - tf.gather(jacobian, labels, batch_dims=1)[:, None]
    return diff, grads, logits


def _clearly_wrong(logits, labels):
    """(N,) bool: another class's logit above the label's by a margin that survives float32 rounding
    (1e-4 relative, as minimal.CLEARANCE): FAB converges onto the boundary, where two evaluations of the same model (the
    folded one here, the user's own later) could otherwise disagree on the class."""
    import tensorflow as tf

    own = tf.gather(logits, labels, batch_dims=1)
    others = tf.where(tf.one_hot(labels, tf.shape(logits)[1]) > 0, -np.inf, logits)
    return tf.reduce_max(others, axis=1) - own > 1e-4 * (1.0 + tf.abs(own))


def _compile(model, norm: str, targeted: bool, num_classes: int):
    import tensorflow as tf

    image = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)
    per = tf.TensorSpec((None,), tf.float32)
    ints = tf.TensorSpec((None,), tf.int32)

    @tf.function(input_signature=[image, image, ints, ints, per, image, per, tf.TensorSpec((), tf.int32)])
    def run(x0, x1, labels, targets, eps, adv, best, steps):
        """`steps` FAB iterations from x1 -> (adv, best): the smallest adversarial found and its norm."""
        n = tf.shape(x0)[0]
        flat0 = tf.reshape(x0, [n, -1])

        def body(i, x1, adv, best):
            diff, grads, logits = _differences(model, x1, labels, targets, targeted, num_classes)
            if not targeted:
                flat = tf.reshape(grads, [n, num_classes, -1])
                dual = (tf.reduce_sum(tf.abs(flat), axis=2) if norm == "linf"
                        else tf.sqrt(tf.reduce_sum(tf.square(flat), axis=2)))
                distance = tf.abs(diff) / (dual + TINY)
                distance = tf.where(tf.one_hot(labels, num_classes) > 0, 1e10, distance)
                j = tf.argmin(distance, axis=1, output_type=tf.int32)
                diff, grads = tf.gather(diff, j, batch_dims=1), tf.gather(grads, j, batch_dims=1)
            w = tf.reshape(grads, [n, -1])
            b = -diff + tf.reduce_sum(w * tf.reshape(x1, [n, -1]), axis=1)
            both = project(tf.concat([tf.reshape(x1, [n, -1]), flat0], 0), tf.concat([w, w], 0),
                           tf.concat([b, b], 0), norm)
            d1, d2 = both[:n], both[n:]
            size = (tf.reduce_max(tf.abs(both), axis=1) if norm == "linf"
                    else tf.sqrt(tf.reduce_sum(tf.square(both), axis=1)))
            size = tf.maximum(size, 1e-8)
            alpha = tf.clip_by_value(size[:n] / (size[:n] + size[n:]), 0.0, ALPHA_MAX)[:, None]
            new = tf.clip_by_value((tf.reshape(x1, [n, -1]) + ETA * d1) * (1 - alpha) + (flat0 + ETA * d2) * alpha,
                                   0.0, 1.0)
            new = tf.reshape(new, tf.shape(x0))
            wrong = _clearly_wrong(tf.cast(model(new, training=False), tf.float32), labels)
            change = tf.reshape(new - x0, [n, -1])
            length = (tf.reduce_max(tf.abs(change), axis=1) if norm == "linf"
                      else tf.sqrt(tf.reduce_sum(tf.square(change), axis=1)))
            smaller = wrong & (length < best)
            adv = tf.where(per_image(smaller, x0) > 0, new, adv)
            best = tf.where(smaller, length, best)
            new = tf.where(per_image(wrong, x0) > 0, x0 + (new - x0) * BETA, new)
            return i + 1, new, adv, best

        def cond(i, x1, adv, best):  # with eps: stop once every image has an adversarial inside its ball
            return (i < steps) & tf.reduce_any(best > eps)

        _, _, adv, best = tf.while_loop(cond, body, (tf.constant(0), x1, adv, best))
        return adv, best

    return run


def fab(model, images: np.ndarray, labels, eps=None, *, norm: str = "linf", targeted: bool = True,
        target_classes: int = 9, steps: int = 100, restarts: int = 1, seed: int = 0, batch_size: int | None = None,
        progress: Progress | None = None):
    """FAB on a batch: attacks.MinimalResult with the smallest adversarial found per image.

    images (N, H, W, C) in [0, 1]; labels (N,) true classes; eps None (pure minimal norm: every
    step for every image), one radius or one per image (an image is done once an adversarial within
    its eps is found; eps also sizes the restarts' random starts). Images wrong clean are returned
    unchanged (distance 0). batch_size: gradients per call, as images (untargeted: divided by the classes).
    """
    import tensorflow as tf

    shape, num_classes = model_shape(model)
    check_norm(norm)
    check_settings(steps=steps)
    for name, value in (("restarts", restarts), ("target_classes", target_classes)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise BadValue(name, f"must be a whole number of at least 1, got {value}")
    originals = as_batch(images, shape, "images")
    labels = _labels(labels, len(originals), num_classes)
    radii = np.full(len(originals), np.inf, np.float32) if eps is None else per_image_eps(eps, len(originals))
    # Untargeted, each image's Jacobian costs a gradient per class: batch_size counts those, as images.
    batch_size = max(1, (batch_size or fitting(model, gradients=True)) // (1 if targeted else num_classes))
    run = cached(model, ("fab", norm, bool(targeted), num_classes), lambda: _compile(model, norm, bool(targeted),
                                                                                       num_classes))
    begin = time.perf_counter()
    logits = predict_logits(model, originals)
    ranking = np.argsort(-logits, axis=1, kind="stable")
    adversarial = originals.copy()
    best = np.where(logits.argmax(axis=1) == labels, np.inf, 0.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    ranks = range(1, min(target_classes, num_classes - 1) + 1) if targeted else [1]
    runs = [(restart, rank) for rank in ranks for restart in range(restarts)]
    for n, (restart, rank) in enumerate(runs):
        todo = np.flatnonzero((best > 0) if eps is None else (best > radii) & (best > 0))
        for i in range(0, len(todo), batch_size):
            part = todo[i:i + batch_size]
            x0 = originals[part]
            start = x0
            if restart:  # a random point at half the smaller of eps and the best norm so far
                scale = np.minimum(np.where(np.isfinite(best[part]), best[part], 1e10), radii[part])
                scale = np.where(np.isfinite(scale), scale, 1.0).reshape(-1, 1, 1, 1)
                t = rng.uniform(-1, 1, x0.shape) if norm == "linf" else rng.normal(size=x0.shape)
                size = (np.abs(t).reshape(len(t), -1).max(1) if norm == "linf"
                        else np.sqrt((t ** 2).reshape(len(t), -1).sum(1))).reshape(-1, 1, 1, 1)
                start = np.clip(x0 + scale * t / size * 0.5, 0, 1).astype(np.float32)
            found, size = run(x0, start, labels[part].astype(np.int32), ranking[part, rank].astype(np.int32),
                              np.where(np.isfinite(radii[part]), radii[part], -1.0).astype(np.float32),
                              adversarial[part], np.where(np.isfinite(best[part]), best[part], 1e10).astype(np.float32),
                              tf.constant(int(steps), tf.int32))
            size = size.numpy()
            better = size < np.where(np.isfinite(best[part]), best[part], 1e10)
            adversarial[part[better]] = found.numpy()[better]
            best[part[better]] = size[better]
            if progress is not None:
                progress((n + 1) * steps, int(np.sum(np.isfinite(best))), len(originals))
    settings = {"norm": norm, "targeted": bool(targeted), "steps": steps, "restarts": restarts, "seed": seed,
                "target_classes": len(ranks) if targeted else None, "alpha_max": ALPHA_MAX, "eta": ETA, "beta": BETA,
                "eps": None if eps is None else "given"}
    return minimal_result(model, norm, originals, adversarial, labels, None, None, time.perf_counter() - begin,
                          settings)
