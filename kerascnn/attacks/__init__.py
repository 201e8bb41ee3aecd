"""Adversarial examples: gradient steps on the pixels of a batch, the model's weights fixed.

Every function takes a *logits* model (`Subject.logits_model`) of any input shape and class count.
On arrays, torchattacks-style, the user's own keras.Model in and adversarial images out (on_arrays.py):
fgsm, pgd, apgd, autoattack, fab, square and minimal, as `kc.attacks.pgd(model, x, y, eps)`.

    nontargeted  Gaussian noise -> images the model calls class c, one per class, all in one batch
    targeted     Gaussian noise -> images close to a guide image yet called class c, c = 0..9
    noise        real images + the additive noise (from zero) that makes the model call them `target`
    universal    one such noise added to many other images: how often does it still work?

All three optimise the pixels with the same loop (`loop.optimise`): minimise, per image,

    cross_entropy(logits(x), target) + beta * mean((x - anchor)^2)

by one of two steps on the pixels (`OPTIMIZERS`), projecting onto [0, 1] after every step unless
`clip=False`:

    sign  x -= lr * sign(grad): every pixel moves by exactly lr (iterative FGSM), so an image's
          largest pixel change is at most lr * its steps.
    adam  Adam with per-image moments and step count.

`sign` reaches a goal in fewer steps than Adam and with smaller noise, but it cannot settle on a
trade-off: on the targeted objective it keeps oscillating by lr around the optimum, where Adam
converges. Hence the defaults: `sign` for nontargeted and noise, which stop at a goal; `adam` for
targeted, which runs to convergence (the measurements: benchmarks/bench_attacks.py).

One gradient step over the whole batch is one compiled tf.function (`loop._compiled(model, optimizer)`,
cached per model); the tape lives in `loop._gradient` alone. The step itself marks every image that
already meets its goal (predicted as its target with probability >= confidence) and leaves it
unchanged from then on, so each image's `steps_used` is the number of updates it got. The steps run
in chunks inside one compiled tf.while_loop that ends as soon as every image is done; the host looks
at the batch once per chunk (`check_every` steps), for progress: calling the compiled step from
Python once per step costs as much per call as a whole step of a small batch.

Losses work on logits; probabilities in results are re-predicted from the returned images
(`model.predict.predict_logits`), so a result never reports what the loop believed but what the model
says about the arrays it returns.
"""
from __future__ import annotations

import time

import numpy as np

from kerascnn.attacks.loop import (
    NOISE_MEAN,
    NOISE_STD,
    OPTIMIZERS,
    Progress,
    as_batch,
    check_class,
    check_settings,
    model_shape,
    optimise,
    parse_classes,
    predict_proba,
    start_noise,
)
from kerascnn.attacks.on_arrays import apgd, autoattack, fab, fgsm, minimal, pgd, square
from kerascnn.attacks.results import AttackResult, NoiseResult, UniversalResult
from kerascnn.errors import BadValue

__all__ = ["nontargeted", "targeted", "noise", "universal", "AttackResult", "NoiseResult", "UniversalResult",
           "OPTIMIZERS", "check_settings", "parse_classes",
           "fgsm", "pgd", "apgd", "autoattack", "fab", "square", "minimal"]


def nontargeted(model, classes, *, steps: int = 500, lr: float = 0.01, seed: int = 0,
                confidence: float = 0.99, clip: bool = True, optimizer: str = "sign", check_every: int = 20,
                progress: Progress | None = None) -> AttackResult:
    """One image per class in `classes` (class numbers of the model), grown from Gaussian noise until
    the model calls it that class.

    Minimises the cross-entropy to each class (not the bare logit: the cross-entropy pushes the
    class's *probability*, which is what `confidence` asks for, and cannot be satisfied by raising
    every logit at once). An image stops changing once predicted as its class with probability
    >= `confidence`; the loop ends when all have, or after `steps`.
    """
    shape, num_classes = model_shape(model)
    check_settings(steps=steps, lr=lr, confidence=confidence, optimizer=optimizer)
    targets = _targets(classes, num_classes)
    start = start_noise(len(targets), shape, seed, clip)
    begin = time.perf_counter()
    images, used, steps_run = optimise(model, start, targets, steps=steps, lr=lr, confidence=confidence,
                                        clip=clip, optimizer=optimizer, check_every=check_every,
                                        progress=progress)
    seconds = time.perf_counter() - begin
    settings = {"classes": targets.tolist(), "steps": steps, "lr": lr, "seed": seed, "confidence": confidence,
                "clip": clip, "optimizer": optimizer, "loss": "cross-entropy",
                "start": f"gaussian mean {NOISE_MEAN} std {NOISE_STD}"}
    return AttackResult("nontargeted", images, targets, predict_proba(model, images), used, steps_run, seconds,
                        settings, confidence=confidence)


def targeted(model, guide: np.ndarray, classes=None, *, beta: float = 100.0, steps: int = 300,
             lr: float = 0.05, seed: int = 0, clip: bool = True, optimizer: str = "adam", check_every: int = 20,
             progress: Progress | None = None) -> AttackResult:
    """Images that look like `guide` (H, W, C) in [0, 1] yet are predicted as each class in `classes`
    (None: every class of the model).

    From Gaussian noise, minimises cross_entropy(model(x), c) + beta * mean((x - guide)^2) for all
    `steps` (no early stop: the distance term keeps improving after the class is reached). Success
    means predicted as c.
    """
    shape, num_classes = model_shape(model)
    check_settings(steps=steps, lr=lr, beta=beta, optimizer=optimizer)
    guide = as_batch(guide, shape, "guide")
    if len(guide) != 1:
        raise BadValue("guide", f"must be one image, got {len(guide)}")
    targets = _targets(range(num_classes) if classes is None else classes, num_classes)
    start = start_noise(len(targets), shape, seed, clip)
    anchor = np.repeat(guide, len(targets), axis=0)
    begin = time.perf_counter()
    images, used, steps_run = optimise(model, start, targets, steps=steps, lr=lr, confidence=None, clip=clip,
                                        optimizer=optimizer, anchor=anchor, beta=beta, check_every=check_every,
                                        progress=progress)
    seconds = time.perf_counter() - begin
    settings = {"classes": targets.tolist(), "beta": beta, "steps": steps, "lr": lr, "seed": seed,
                "clip": clip, "optimizer": optimizer, "loss": "cross-entropy + beta * mse(x, guide)",
                "start": f"gaussian mean {NOISE_MEAN} std {NOISE_STD}"}
    return AttackResult("targeted", images, targets, predict_proba(model, images), used, steps_run, seconds,
                        settings, confidence=None, guide=guide[0])


def noise(model, images: np.ndarray, target: int, *, steps: int = 500, lr: float = 0.005,
          confidence: float = 0.99, beta: float = 0.0, clip: bool = True, optimizer: str = "sign", labels=None,
          check_every: int = 20, progress: Progress | None = None) -> NoiseResult:
    """For each image (N, H, W, C) in [0, 1], an additive noise (from zero) that makes the model
    predict `target` with probability >= `confidence`.

    Optimises the noisy image directly (minimising cross-entropy to `target` + beta * mean squared
    noise), keeping it in [0, 1] when `clip`; each image stops as soon as it is fooled, so the noise
    stops growing there, but it is not the smallest noise that reaches the goal: on the pretrained
    MNIST model the minimum-norm attack (`attacks.minimal` with a target and a confidence,
    `attack noise --norm l2`) reaches P >= 0.99 with 28-36% less L2, and its linf form with 14-23%
    less L-infinity. The noise reported is the noisy image minus the original. `labels`:
    the images' true classes (None or -1 where unknown), carried into the result.
    """
    shape, num_classes = model_shape(model)
    check_settings(steps=steps, lr=lr, confidence=confidence, beta=beta, optimizer=optimizer)
    check_class(target, num_classes, "target")
    originals = as_batch(images, shape, "images")
    labels = (np.full(len(originals), -1, np.int64) if labels is None
              else np.asarray([-1 if v is None else v for v in labels], np.int64))
    if labels.shape != (len(originals),):
        raise BadValue("labels", f"must be one per image ({len(originals)}), got shape {labels.shape}")
    targets = np.full(len(originals), int(target), np.int64)
    begin = time.perf_counter()
    noisy, used, steps_run = optimise(model, originals, targets, steps=steps, lr=lr, confidence=confidence,
                                       clip=clip, optimizer=optimizer, anchor=originals, beta=beta,
                                       check_every=check_every, progress=progress)
    seconds = time.perf_counter() - begin
    settings = {"target": int(target), "steps": steps, "lr": lr, "confidence": confidence, "beta": beta,
                "clip": clip, "optimizer": optimizer, "loss": "cross-entropy + beta * mean(noise^2)"}
    return NoiseResult(int(target), originals, noisy, noisy - originals, labels, predict_proba(model, originals),
                       predict_proba(model, noisy), used, steps_run, seconds, confidence, settings)


def universal(model, noise: np.ndarray, images: np.ndarray, labels, target: int, *, clip: bool = True,
              indices=None) -> UniversalResult:
    """Adds one `noise` (H, W, C) to every image (N, H, W, C) and re-predicts them all."""
    shape, num_classes = model_shape(model)
    check_class(target, num_classes, "target")
    noise = as_batch(noise, shape, "noise")
    if len(noise) != 1:
        raise BadValue("noise", f"must be one image, got {len(noise)}")
    clean = as_batch(images, shape, "images")
    labels = np.asarray(labels, np.int64)
    if labels.shape != (len(clean),):
        raise BadValue("labels", f"must be one per image ({len(clean)}), got shape {labels.shape}")
    noisy = clean + noise
    if clip:
        noisy = np.clip(noisy, 0.0, 1.0)
    clean_predicted = predict_proba(model, clean).argmax(axis=1)
    return UniversalResult(int(target), noise[0], clean, noisy.astype(np.float32), labels, clean_predicted,
                           predict_proba(model, noisy), None if indices is None else np.asarray(indices, np.int64))


def _targets(classes, num_classes: int) -> np.ndarray:
    """Class numbers (an iterable of ints, or a spec like "0-4,7") -> (N,) int64, each checked."""
    if isinstance(classes, str):
        return np.asarray(parse_classes(classes, num_classes), np.int64)
    classes = [int(c) if isinstance(c, np.integer) else c for c in classes]
    if not classes:
        raise BadValue("classes", "is empty: give at least one class")
    return np.asarray([check_class(c, num_classes, "classes") for c in classes], np.int64)
