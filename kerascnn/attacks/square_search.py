"""The Square Attack (Andriushchenko et al., ECCV 2020): score-based, no gradients, so gradient
masking cannot hide a model from it; AutoAttack's last component.

Each query changes one random square window of the current best image and keeps the change if the
margin loss (logit of the label minus the largest other) went down, or the image is misclassified.
The window's side follows the reference's schedule: a fraction p of the pixels, p = p_init halved at
fixed iterations (rescaled to the query budget). linf: windows of +-2 eps per channel, projected
onto the ball, from vertical stripes of +-eps; L2: the reference's centred rectangles of decreasing
weight, moving mass from a second window, the image kept on the sphere of radius eps.

As in fra31/auto-attack `square.py`, one window position per query is shared by the batch; here the
signs are drawn per image (the paper's algorithm). The queries between two points of the schedule
run in one compiled tf.while_loop with the window side fixed; at most `CHUNK` queries go by between
two looks from the host, which then drops the images already fooled, so later queries cost less.
"""
from __future__ import annotations

import math
import time

import numpy as np

from kerascnn.attacks.bounded_results import bounded_result
from kerascnn.attacks.fgm import _labels, check_norm, per_image, per_image_eps
from kerascnn.attacks.loop import Progress, as_batch, cached, model_shape
from kerascnn.errors import BadValue
from kerascnn.model.batching import batch_size as fitting
from kerascnn.model.predict import predict_logits

#: The reference's breakpoints of p (in queries rescaled to 10,000): p_init / 2^(breakpoints passed).
BREAKPOINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
CHUNK = 100


def p_selection(i: int, queries: int, p_init: float = 0.8) -> float:
    """The fraction of pixels changed at query i (0-based) of `queries` (the reference's schedule
    with rescale_schedule=True)."""
    it = int(i / queries * 10000)
    return p_init / 2 ** sum(it > b for b in BREAKPOINTS)


def window(p: float, shape, norm: str) -> int:
    """The square's side for a fraction p of an (H, W, C) image's features."""
    h, w, c = shape
    s = int(round(math.sqrt(p * h * w * c / c)))
    if norm == "linf":
        return min(max(s, 1), h, w)
    s = max(s, 3)
    return min(s + (s % 2 == 0), h, w)


def eta(s: int) -> np.ndarray:
    """The reference's L2 update pattern (s, s): nested rectangles weighted 1/(k+1)^2, positive in
    the top half, negative in the bottom half, unit L2 norm."""
    def rectangles(x, y):
        delta = np.zeros((x, y))
        xc, yc = x // 2 + 1, y // 2 + 1
        c0, c1 = xc - 1, yc - 1
        for k in range(max(xc, yc)):
            delta[max(c0, 0):min(c0 + 2 * k + 1, x), max(0, c1):min(c1 + 2 * k + 1, y)] += 1.0 / (k + 1) ** 2
            c0, c1 = c0 - 1, c1 - 1
        return delta / np.sqrt((delta ** 2).sum())

    delta = np.zeros((s, s))
    delta[:s // 2] = rectangles(s // 2, s) if s // 2 else 0
    delta[s // 2:] = -rectangles(s - s // 2, s)
    return (delta / np.sqrt((delta ** 2).sum())).astype(np.float32)


def _margin(model, x, labels):
    import tensorflow as tf

    logits = tf.cast(model(x, training=False), tf.float32)
    own = tf.gather(logits, labels, batch_dims=1)
    others = tf.where(tf.one_hot(labels, tf.shape(logits)[1]) > 0, -np.inf, logits)
    return own - tf.reduce_max(others, axis=1)


def _l2(delta):
    import tensorflow as tf

    return tf.sqrt(tf.reduce_sum(tf.square(delta), axis=[1, 2, 3], keepdims=True))


def _compile(model, norm: str, s: int):
    """One chunk of queries with window side s: (x, labels, eps, best, margin, key, count) -> (best,
    margin, queries used per image)."""
    import tensorflow as tf

    h, w, c = (int(d) for d in model.inputs[0].shape[1:])
    pattern = tf.constant(eta(s)) if norm == "l2" else None
    image = tf.TensorSpec((None, h, w, c), tf.float32)
    per = tf.TensorSpec((None,), tf.float32)

    @tf.function(input_signature=[image, tf.TensorSpec((None,), tf.int32), per, image, per,
                                  tf.TensorSpec((2,), tf.int64), tf.TensorSpec((), tf.int32)])
    def run(x, labels, eps, best, margin, key, count):
        n = tf.shape(x)[0]
        radius = per_image(eps, x)

        def body(i, best, margin, used):
            seed = tf.stack([key[0], key[1] * 100_003 + tf.cast(i, tf.int64)])
            corner = tf.random.stateless_uniform([2], seed, 0, 1)
            vh = tf.cast(corner[0] * (h - s), tf.int32)
            vw = tf.cast(corner[1] * (w - s), tf.int32)
            pad = [[0, 0], [vh, h - s - vh], [vw, w - s - vw], [0, 0]]
            signs = tf.sign(tf.random.stateless_uniform([n, 1, 1, c], seed + 1, -1, 1))
            if norm == "linf":
                mask = tf.pad(tf.ones([1, s, s, 1]), pad)
                candidate = tf.clip_by_value(best + mask * 2.0 * radius * signs, x - radius, x + radius)
            else:
                delta = best - x
                other = tf.random.stateless_uniform([2], seed + 2, 0, 1)
                vh2, vw2 = tf.cast(other[0] * (h - s), tf.int32), tf.cast(other[1] * (w - s), tf.int32)
                mask1 = tf.pad(tf.ones([1, s, s, 1]), pad)
                mask2 = tf.pad(tf.ones([1, s, s, 1]), [[0, 0], [vh2, h - s - vh2], [vw2, w - s - vw2], [0, 0]])
                inside = tf.slice(delta, tf.stack([0, vh, vw, 0]), [-1, s, s, -1])
                norm_window = tf.sqrt(tf.reduce_sum(tf.square(inside), axis=[1, 2], keepdims=True))
                norm_image = _l2(delta)
                norm_both = tf.sqrt(tf.reduce_sum(tf.square(delta * tf.maximum(mask1, mask2)), axis=[1, 2],
                                                  keepdims=True))
                flip = tf.random.stateless_uniform([], seed + 3) > 0.5
                shape = tf.where(flip, tf.transpose(pattern), pattern)[None, :, :, None]
                new = shape * signs + inside / (1e-12 + norm_window)
                room = tf.maximum(tf.square(radius) - tf.square(norm_image), 0.0) / c + tf.square(norm_both)
                new = new / (1e-12 + tf.sqrt(tf.reduce_sum(tf.square(new), axis=[1, 2], keepdims=True))) \
                    * tf.sqrt(room)
                delta = delta * (1.0 - mask2)
                delta = delta * (1.0 - mask1) + tf.pad(new, pad)
                candidate = x + delta / (1e-12 + _l2(delta)) * radius
            candidate = tf.clip_by_value(candidate, 0.0, 1.0)
            new_margin = _margin(model, candidate, labels)
            active = margin > 0
            take = active & (new_margin < margin)
            best = tf.where(per_image(take, x) > 0, candidate, best)
            return i + 1, best, tf.where(take, new_margin, margin), used + tf.cast(active, tf.int32)

        def cond(i, best, margin, used):
            return (i < count) & tf.reduce_any(margin > 0)

        _, best, margin, used = tf.while_loop(cond, body, (tf.constant(0), best, margin, tf.zeros([n], tf.int32)))
        return best, margin, used

    return run


def _start(model, norm: str, x, eps, rng):
    """The reference's first point: vertical stripes of +-eps (linf); the tiled rectangles scaled to
    norm eps (L2)."""
    n, h, w, c = x.shape
    radius = eps.reshape(-1, 1, 1, 1)
    if norm == "linf":
        return np.clip(x + radius * rng.choice([-1.0, 1.0], (n, 1, w, c)), 0, 1).astype(np.float32)
    s = max(h // 5, 1)
    delta = np.zeros_like(x)
    start = (h - s * 5) // 2
    for i in range(h // s):
        for j in range(w // s):
            top, left = start + i * s, start + j * s
            if top + s <= h and left + s <= w:
                delta[:, top:top + s, left:left + s, :] += eta(s)[None, :, :, None] * rng.choice([-1.0, 1.0], (n, 1, 1, c))
    length = np.sqrt((delta ** 2).reshape(n, -1).sum(axis=1)).reshape(-1, 1, 1, 1)
    return np.clip(x + delta / (length + 1e-12) * radius, 0, 1).astype(np.float32)


def square(model, images: np.ndarray, labels, eps, *, norm: str = "linf", queries: int = 5000, p_init: float = 0.8,
           seed: int = 0, batch_size: int | None = None, progress: Progress | None = None):
    """Square Attack on a batch: attacks.BoundedResult ("square") of images within eps of `images`.

    images (N, H, W, C) in [0, 1]; labels (N,) true classes; eps one radius or one per image. Images
    the model gets wrong clean are returned unchanged.
    """
    import tensorflow as tf

    shape, num_classes = model_shape(model)
    check_norm(norm)
    if isinstance(queries, bool) or int(queries) != queries or queries < 1:
        raise BadValue("queries", f"must be a whole number of at least 1, got {queries}")
    if not (math.isfinite(p_init) and 0 < p_init <= 1):
        raise BadValue("p_init", f"must be in (0, 1], got {p_init}")
    originals = as_batch(images, shape, "images")
    labels = _labels(labels, len(originals), num_classes)
    radii = per_image_eps(eps, len(originals))
    batch_size = batch_size or fitting(model)
    begin = time.perf_counter()
    rng = np.random.default_rng(seed)
    adversarial = originals.copy()
    used = np.zeros(len(originals), np.int64)
    todo = np.flatnonzero(predict_logits(model, originals).argmax(axis=1) == labels)
    # the schedule's pieces: (first query, last query + 1, window side)
    sides = [window(p_selection(i, queries, p_init), shape, norm) for i in range(queries)]
    pieces = [(i, j) for i, j in _runs(sides)]
    for start in range(0, len(todo), batch_size):
        rows = todo[start:start + batch_size]
        x = originals[rows]
        best = _start(model, norm, x, radii[rows], rng)
        margin = _margin(model, tf.constant(best), tf.constant(labels[rows], tf.int32)).numpy()
        used[rows] = 1
        live = np.arange(len(rows))
        for first, end in pieces:
            s = sides[first]
            run = cached(model, ("square", norm, s), lambda: _compile(model, norm, s))
            for at in range(first, end, CHUNK):
                live = live[margin[live] > 0]
                if not len(live):
                    break
                out, new_margin, spent = run(x[live], labels[rows][live].astype(np.int32), radii[rows][live],
                                             best[live], margin[live], tf.constant([seed, at], tf.int64),
                                             tf.constant(min(CHUNK, end - at), tf.int32))
                best[live], margin[live] = out.numpy(), new_margin.numpy()
                used[rows[live]] += spent.numpy()
            if progress is not None:
                progress(end, int(np.sum(margin <= 0)), len(rows))
        adversarial[rows] = best
    fooled = used[todo][predict_logits(model, adversarial[todo]).argmax(axis=1) != labels[todo]] if len(todo) else []
    settings = {"norm": norm, "queries": queries, "p_init": p_init, "seed": seed, "loss": "margin",
                "windows": "one position per query for the batch, signs per image",
                "mean_queries_of_fooled": float(np.mean(fooled)) if len(fooled) else None}
    return bounded_result(model, "square", norm, radii, originals, adversarial, labels, False, None,
                          time.perf_counter() - begin, settings)


def _runs(values: list) -> list[tuple[int, int]]:
    """[(start, end)] of the runs of equal consecutive values."""
    out, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            out.append((start, i))
            start = i
    return out
