"""Adversarial examples: gradient steps on the pixels of a batch, the model's weights fixed.

    nontargeted  Gaussian noise -> images the model calls class c, one per class, all in one batch
    targeted     Gaussian noise -> images close to a guide image yet called class c, c = 0..9
    noise        real images + the additive noise (from zero) that makes the model call them `target`
    universal    one such noise added to many other images: how often does it still work?

All three optimise the pixels with the same loop (`_optimise`): minimise, per image,

    cross_entropy(logits(x), target) + beta * mean((x - anchor)^2)

by one of two steps on the pixels (`OPTIMIZERS`), projecting onto [0, 1] after every step unless
`clip=False`:

    sign  x -= lr * sign(grad): every pixel moves by exactly lr (iterative FGSM), so an image's
          largest pixel change is at most lr * its steps.
    adam  Adam with per-image moments and step count.

Measured on the pretrained model (stop at p >= 0.99): `sign` reaches the target in about half the
steps Adam needs at the same lr (nontargeted, lr 0.01: 7.5 against 12.6 steps on average), and
finds smaller noise for the noise attack (lr 0.005: L2 3.4 against 3.6, L-infinity 0.21 against
0.27, in 41 against 60 steps). But it cannot settle on a trade-off: on the targeted objective it
keeps oscillating by lr around the optimum (lr 0.05, beta 100: 7 classes reached against Adam's 10,
MSE to the guide 0.015 against 0.007), where Adam converges. Hence the defaults: `sign` for
nontargeted and noise, which stop at a goal; `adam` for targeted, which runs to convergence.

One gradient step over the whole batch is one compiled tf.function (`_compiled(model, optimizer)`,
cached per model); the tape lives in `_gradient` alone. The step itself marks every image that
already meets its goal (predicted as its target with probability >= confidence) and leaves it
unchanged from then on, so each image's `steps_used` is the number of updates it got. The steps run
in chunks inside one compiled tf.while_loop that ends as soon as every image is done; the host looks
at the batch once per chunk (`check_every` steps), for progress. On two CPU cores that loop ran
1.4-2x the steps per second of calling the compiled step from Python once per step, whose per-call
overhead is as large as a whole step of a batch of ten (benchmarks/bench_attacks.py).

Losses work on logits; probabilities in results are re-predicted from the returned images
(`evaluation.predict_logits`), so a result never reports what the loop believed but what the model
says about the arrays it returns.
"""
from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-7
#: The Gaussian noise the nontargeted and targeted attacks start from (grey, pixel std 0.25).
NOISE_MEAN, NOISE_STD = 0.5, 0.25
#: The pixel update rules (see the module docstring for which attack uses which, and why).
OPTIMIZERS = ("sign", "adam")

#: progress(steps_done, images_done, images_total): called every `check_every` steps and at the end.
Progress = Callable[[int, int, int], None]

_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------- argument checks
def parse_classes(spec: str) -> list[int]:
    """'0-9', '3,5,8', '0-4,7' -> sorted distinct classes. ValueError on anything else."""
    classes: set[int] = set()
    text = str(spec).replace(" ", "")
    if not text:
        raise ValueError("--classes is empty: give e.g. 0-9, 3,5,8 or 0-4,7")
    for part in text.split(","):
        bounds = part.split("-")
        try:
            if len(bounds) == 1:
                low = high = int(bounds[0])
            elif len(bounds) == 2:
                low, high = int(bounds[0]), int(bounds[1])
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"--classes {spec!r}: cannot read {part!r} (give e.g. 0-9, 3,5,8 or 0-4,7)") from None
        if not (0 <= low <= 9 and 0 <= high <= 9) or low > high:
            raise ValueError(f"--classes {spec!r}: {part!r} is not a class or range within 0-9")
        classes.update(range(low, high + 1))
    return sorted(classes)


def check_settings(*, steps: int | None = None, lr: float | None = None, confidence: float | None = None,
                   beta: float | None = None, target: int | None = None, classes=None,
                   optimizer: str | None = None) -> None:
    """Raises ValueError (one line, naming the option) for a value no attack can use. None: not checked."""
    if steps is not None and (isinstance(steps, bool) or int(steps) != steps or steps < 1):
        raise ValueError(f"--steps must be a whole number of at least 1, got {steps}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"--lr must be a positive number, got {lr}")
    if confidence is not None and not (math.isfinite(confidence) and 0 < confidence < 1):
        raise ValueError(f"--confidence must be strictly between 0 and 1, got {confidence}")
    if beta is not None and not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"--beta must be a number >= 0, got {beta}")
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if target is not None:
        _check_class(target, "--target")
    if classes is not None:
        if len(classes) == 0:
            raise ValueError("--classes is empty: give at least one class 0-9")
        for c in classes:
            _check_class(c, "--classes")


def _check_class(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < NUM_CLASSES:
        raise ValueError(f"{name} must be a class 0-9, got {value}")


def _as_batch(images, name: str) -> np.ndarray:
    """(28, 28), (28, 28, 1) or (N, 28, 28, 1) -> (N, 28, 28, 1) float32; ValueError otherwise."""
    array = np.asarray(images, np.float32)
    if array.shape in ((28, 28), IMAGE_SHAPE):
        array = array.reshape((1,) + IMAGE_SHAPE)
    if array.ndim != 4 or array.shape[1:] != IMAGE_SHAPE or len(array) == 0:
        raise ValueError(f"{name} must be (N, 28, 28, 1) images, got shape {np.shape(images)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or infinite pixels")
    return array


# ---------------------------------------------------------------------------- the optimisation loop
def _gradient(model, x, targets, anchor, beta):
    """The tape: logits of x, per-image objective, and its gradient with respect to the pixels."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.cast(model(x, training=False), tf.float32)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        distance = tf.reduce_mean(tf.square(x - anchor), axis=[1, 2, 3])
        # The sum keeps every image's gradient independent of the others and of the batch size.
        loss = tf.reduce_sum(cross_entropy + beta * distance)
    return logits, tape.gradient(loss, x)


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


def _optimise(model, start: np.ndarray, targets: np.ndarray, *, steps: int, lr: float,
              confidence: float | None, clip: bool, optimizer: str = "adam", anchor: np.ndarray | None = None,
              beta: float = 0.0, check_every: int = 20,
              progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Up to `steps` masked steps from `start` (N, 28, 28, 1) towards `targets` (N,).

    confidence None: no image stops early (each gets `steps` updates). Returns (images (N, 28, 28, 1)
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


def start_noise(count: int, seed: int, clip: bool = True) -> np.ndarray:
    """Gaussian noise images (count, 28, 28, 1) float32: mean NOISE_MEAN, std NOISE_STD, seeded
    (NumPy, so the same seed gives the same start on every machine); clipped to [0, 1] when `clip`."""
    noise = np.random.default_rng(seed).normal(NOISE_MEAN, NOISE_STD, (count,) + IMAGE_SHAPE)
    return (np.clip(noise, 0.0, 1.0) if clip else noise).astype(np.float32)


def _predict(model, images: np.ndarray) -> np.ndarray:
    from kerascnn import evaluation

    return evaluation.predict_proba(model, images)


# ---------------------------------------------------------------------------- results
@dataclass
class AttackResult:
    """Images grown from Gaussian noise (nontargeted, targeted), one per target class."""
    kind: str                       # "nontargeted" or "targeted"
    images: np.ndarray              # (N, 28, 28, 1) float32; in [0, 1] unless clip=False
    targets: np.ndarray             # (N,) int64: the class each image was pushed towards
    probabilities: np.ndarray       # (N, 10) float64, re-predicted from `images`
    steps_used: np.ndarray          # (N,) int64: updates each image received
    steps_run: int                  # steps the batch ran (fewer than `steps` when all stopped early)
    seconds: float                  # wall time of the optimisation (compilation included)
    settings: dict                  # the arguments: steps, lr, seed, clip, confidence, beta...
    confidence: float | None = None  # success needs this probability too (None: the prediction alone)
    guide: np.ndarray | None = None  # (28, 28, 1) the image a targeted attack stays close to

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def probability(self) -> np.ndarray:
        """(N,) probability of the predicted class."""
        return self.probabilities.max(axis=1)

    @property
    def target_probability(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self.targets)), self.targets]

    @property
    def success(self) -> np.ndarray:
        """(N,) bool: predicted as its target (with probability >= confidence when one is set)."""
        ok = self.predicted == self.targets
        if self.confidence is not None:
            ok &= self.target_probability >= self.confidence
        return ok

    @property
    def mse(self) -> np.ndarray | None:
        """(N,) mean squared difference to the guide (targeted), else None."""
        if self.guide is None:
            return None
        return np.mean(np.square(self.images - self.guide[None]), axis=(1, 2, 3), dtype=np.float64)

    def to_dict(self) -> dict:
        rows = []
        mse = self.mse
        for i, target in enumerate(self.targets):
            row = {"target": int(target), "predicted": int(self.predicted[i]),
                   "probability": float(self.probability[i]),
                   "target_probability": float(self.target_probability[i]),
                   "steps_used": int(self.steps_used[i]), "success": bool(self.success[i])}
            if mse is not None:
                row["mse"] = float(mse[i])
            rows.append(row)
        out = {"attack": self.kind, "settings": self.settings, "successes": int(self.success.sum()),
               "count": len(self.targets), "steps_run": self.steps_run, "seconds": round(self.seconds, 3),
               "results": rows}
        if mse is not None:
            out["mean_mse"] = float(mse.mean())
        return out


@dataclass
class NoiseResult:
    """Source images, the noise found for each, and what the model says before and after."""
    target: int
    originals: np.ndarray               # (N, 28, 28, 1) float32 in [0, 1]
    images: np.ndarray                  # (N, 28, 28, 1) the noisy images (originals + noise)
    noise: np.ndarray                   # (N, 28, 28, 1) images - originals: the noise as applied
    labels: np.ndarray                  # (N,) int64 true classes, -1 where unknown (a user's picture)
    original_probabilities: np.ndarray  # (N, 10) float64
    probabilities: np.ndarray           # (N, 10) float64, re-predicted from `images`
    steps_used: np.ndarray              # (N,) int64
    steps_run: int
    seconds: float
    confidence: float
    settings: dict

    @property
    def original_predicted(self) -> np.ndarray:
        return self.original_probabilities.argmax(axis=1)

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def target_probability(self) -> np.ndarray:
        return self.probabilities[:, self.target]

    @property
    def success(self) -> np.ndarray:
        return (self.predicted == self.target) & (self.target_probability >= self.confidence)

    @property
    def l2(self) -> np.ndarray:
        """(N,) Euclidean norm of each noise, in pixel units (a pixel spans 0..1)."""
        return np.sqrt(np.sum(np.square(self.noise, dtype=np.float64), axis=(1, 2, 3)))

    @property
    def linf(self) -> np.ndarray:
        """(N,) largest absolute change of any pixel."""
        return np.max(np.abs(self.noise), axis=(1, 2, 3)).astype(np.float64)

    def to_dict(self) -> dict:
        rows = []
        for i in range(len(self.originals)):
            rows.append({
                "label": None if self.labels[i] < 0 else int(self.labels[i]),
                "original_predicted": int(self.original_predicted[i]),
                "original_probability": float(self.original_probabilities[i].max()),
                "predicted": int(self.predicted[i]), "probability": float(self.probabilities[i].max()),
                "target_probability": float(self.target_probability[i]),
                "l2": float(self.l2[i]), "linf": float(self.linf[i]),
                "steps_used": int(self.steps_used[i]), "success": bool(self.success[i])})
        return {"attack": "noise", "target": self.target, "settings": self.settings,
                "successes": int(self.success.sum()), "count": len(rows), "steps_run": self.steps_run,
                "seconds": round(self.seconds, 3), "results": rows}


@dataclass
class UniversalResult:
    """One noise added to many images: how often the model then says `target`."""
    target: int
    noise: np.ndarray             # (28, 28, 1) the noise added to every image
    clean: np.ndarray             # (N, 28, 28, 1)
    noisy: np.ndarray             # (N, 28, 28, 1) clean + noise (clipped to [0, 1] when clip)
    labels: np.ndarray            # (N,) int64 true classes
    clean_predicted: np.ndarray   # (N,) int64
    noisy_probabilities: np.ndarray  # (N, 10) float64
    indices: np.ndarray | None = None  # (N,) where the images came from (test-split indices)

    @property
    def noisy_predicted(self) -> np.ndarray:
        return self.noisy_probabilities.argmax(axis=1)

    @property
    def fooled(self) -> np.ndarray:
        """(N,) bool: the noisy image is predicted as the target."""
        return self.noisy_predicted == self.target

    @property
    def changed(self) -> np.ndarray:
        """(N,) bool: the prediction differs from the clean image's."""
        return self.noisy_predicted != self.clean_predicted

    @property
    def fraction_turned(self) -> float | None:
        """Of the images not predicted as the target when clean, the fraction that are with the noise."""
        others = self.clean_predicted != self.target
        return float(self.fooled[others].mean()) if others.any() else None

    def per_class(self) -> dict[int, dict]:
        """For each true class present: count, fraction predicted as target, fraction changed."""
        out = {}
        for c in np.unique(self.labels):
            rows = self.labels == c
            out[int(c)] = {"count": int(rows.sum()), "fraction_target": float(self.fooled[rows].mean()),
                           "fraction_changed": float(self.changed[rows].mean())}
        return out

    def to_dict(self) -> dict:
        return {"target": self.target, "count": len(self.labels),
                "fraction_target": float(self.fooled.mean()), "fraction_changed": float(self.changed.mean()),
                "fraction_turned": self.fraction_turned,
                "clean_accuracy": float((self.clean_predicted == self.labels).mean()),
                "noisy_accuracy": float((self.noisy_predicted == self.labels).mean()),
                "noise_l2": float(np.sqrt(np.sum(np.square(self.noise, dtype=np.float64)))),
                "noise_linf": float(np.max(np.abs(self.noise))),
                "per_class": {str(c): v for c, v in self.per_class().items()},
                "indices": None if self.indices is None else [int(i) for i in self.indices]}


# ---------------------------------------------------------------------------- the attacks
def nontargeted(model, classes, *, steps: int = 500, lr: float = 0.01, seed: int = 0,
                confidence: float = 0.99, clip: bool = True, optimizer: str = "sign", check_every: int = 20,
                progress: Progress | None = None) -> AttackResult:
    """One image per class in `classes` (0-9), grown from Gaussian noise until the model calls it that class.

    Minimises the cross-entropy to each class (not the bare logit: the cross-entropy pushes the
    class's *probability*, which is what `confidence` asks for, and cannot be satisfied by raising
    every logit at once). An image stops changing once predicted as its class with probability
    >= `confidence`; the loop ends when all have, or after `steps`.
    """
    classes = [int(c) if isinstance(c, np.integer) else c for c in classes]
    check_settings(steps=steps, lr=lr, confidence=confidence, classes=classes, optimizer=optimizer)
    targets = np.asarray(classes, np.int64)
    start = start_noise(len(targets), seed, clip)
    begin = time.perf_counter()
    images, used, steps_run = _optimise(model, start, targets, steps=steps, lr=lr, confidence=confidence,
                                        clip=clip, optimizer=optimizer, check_every=check_every,
                                        progress=progress)
    seconds = time.perf_counter() - begin
    settings = {"classes": targets.tolist(), "steps": steps, "lr": lr, "seed": seed, "confidence": confidence,
                "clip": clip, "optimizer": optimizer, "loss": "cross-entropy",
                "start": f"gaussian mean {NOISE_MEAN} std {NOISE_STD}"}
    return AttackResult("nontargeted", images, targets, _predict(model, images), used, steps_run, seconds,
                        settings, confidence=confidence)


def targeted(model, guide: np.ndarray, classes=range(NUM_CLASSES), *, beta: float = 100.0, steps: int = 300,
             lr: float = 0.05, seed: int = 0, clip: bool = True, optimizer: str = "adam", check_every: int = 20,
             progress: Progress | None = None) -> AttackResult:
    """Images that look like `guide` (28, 28, 1) in [0, 1] yet are predicted as each class in `classes`.

    From Gaussian noise, minimises cross_entropy(model(x), c) + beta * mean((x - guide)^2) for all
    `steps` (no early stop: the distance term keeps improving after the class is reached). Success
    means predicted as c.
    """
    classes = [int(c) if isinstance(c, np.integer) else c for c in classes]
    check_settings(steps=steps, lr=lr, beta=beta, classes=classes, optimizer=optimizer)
    guide = _as_batch(guide, "guide")
    if len(guide) != 1:
        raise ValueError(f"guide must be one image, got {len(guide)}")
    targets = np.asarray(classes, np.int64)
    start = start_noise(len(targets), seed, clip)
    anchor = np.repeat(guide, len(targets), axis=0)
    begin = time.perf_counter()
    images, used, steps_run = _optimise(model, start, targets, steps=steps, lr=lr, confidence=None, clip=clip,
                                        optimizer=optimizer, anchor=anchor, beta=beta, check_every=check_every,
                                        progress=progress)
    seconds = time.perf_counter() - begin
    settings = {"classes": targets.tolist(), "beta": beta, "steps": steps, "lr": lr, "seed": seed,
                "clip": clip, "optimizer": optimizer, "loss": "cross-entropy + beta * mse(x, guide)",
                "start": f"gaussian mean {NOISE_MEAN} std {NOISE_STD}"}
    return AttackResult("targeted", images, targets, _predict(model, images), used, steps_run, seconds,
                        settings, confidence=None, guide=guide[0])


def noise(model, images: np.ndarray, target: int, *, steps: int = 500, lr: float = 0.005,
          confidence: float = 0.99, beta: float = 0.0, clip: bool = True, optimizer: str = "sign", labels=None,
          check_every: int = 20, progress: Progress | None = None) -> NoiseResult:
    """For each image (N, 28, 28, 1) in [0, 1], an additive noise (from zero) that makes the model
    predict `target` with probability >= `confidence`.

    Optimises the noisy image directly (minimising cross-entropy to `target` + beta * mean squared
    noise), keeping it in [0, 1] when `clip`; each image stops as soon as it is fooled, so the noise
    is no larger than needed. The noise reported is the noisy image minus the original. `labels`:
    the images' true classes (None or -1 where unknown), carried into the result.
    """
    check_settings(steps=steps, lr=lr, confidence=confidence, beta=beta, target=target, optimizer=optimizer)
    originals = _as_batch(images, "images")
    labels = (np.full(len(originals), -1, np.int64) if labels is None
              else np.asarray([-1 if v is None else v for v in labels], np.int64))
    if labels.shape != (len(originals),):
        raise ValueError(f"labels must be one per image ({len(originals)}), got shape {labels.shape}")
    targets = np.full(len(originals), int(target), np.int64)
    begin = time.perf_counter()
    noisy, used, steps_run = _optimise(model, originals, targets, steps=steps, lr=lr, confidence=confidence,
                                       clip=clip, optimizer=optimizer, anchor=originals, beta=beta,
                                       check_every=check_every, progress=progress)
    seconds = time.perf_counter() - begin
    settings = {"target": int(target), "steps": steps, "lr": lr, "confidence": confidence, "beta": beta,
                "clip": clip, "optimizer": optimizer, "loss": "cross-entropy + beta * mean(noise^2)"}
    return NoiseResult(int(target), originals, noisy, noisy - originals, labels, _predict(model, originals),
                       _predict(model, noisy), used, steps_run, seconds, confidence, settings)


def universal(model, noise: np.ndarray, images: np.ndarray, labels, target: int, *, clip: bool = True,
              indices=None) -> UniversalResult:
    """Adds one `noise` (28, 28, 1) to every image (N, 28, 28, 1) and re-predicts them all."""
    check_settings(target=target)
    noise = _as_batch(noise, "noise")
    if len(noise) != 1:
        raise ValueError(f"noise must be one image, got {len(noise)}")
    clean = _as_batch(images, "images")
    labels = np.asarray(labels, np.int64)
    if labels.shape != (len(clean),):
        raise ValueError(f"labels must be one per image ({len(clean)}), got shape {labels.shape}")
    noisy = clean + noise
    if clip:
        noisy = np.clip(noisy, 0.0, 1.0)
    clean_predicted = _predict(model, clean).argmax(axis=1)
    return UniversalResult(int(target), noise[0], clean, noisy.astype(np.float32), labels, clean_predicted,
                           _predict(model, noisy), None if indices is None else np.asarray(indices, np.int64))
