"""TCAV, testing with concept activation vectors (Kim et al. 2018), the recipe of tensorflow/tcav:

    CAV         a linear classifier on a layer's activations, a concept's examples against random
                counterexamples; the CAV is its weight vector (the normal of the boundary, towards the concept)
    score       the share of a class's images whose logit rises along the CAV: the directional
                derivative  grad_a logit_k(a) . cav  is positive (a: the image's activations at the layer)
    baseline    the same score for CAVs of random images against other random images
    test        a two-sided t-test of the concept's scores over the runs against the baseline's
                (scipy.stats.ttest_ind, Student's, as tcav's utils_plot), Bonferroni-corrected

The classifier is an L2-regularised logistic regression (tcav's model_type "logistic"; its default is
sklearn's SGDClassifier with alpha 0.01, a hinge loss): scikit-learn is not a dependency, so the loss
is minimised here with scipy.optimize's L-BFGS, exactly, where SGD stops near the optimum. Unlike tcav,
the activations are scaled to mean squared norm 1 first, so that alpha 0.01 regularises alike at any
layer of any model (see fit_cav).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.attributions.layer_gradients import layer_gradient_fn
from kerascnn.model.batching import batch_size


@dataclass
class Cav:
    direction: np.ndarray     # (D,) unit L2 norm, pointing from the counterexamples to the concept
    accuracy: float           # on the held-out share of the examples


def logistic_regression(x: np.ndarray, y: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, float]:
    """(w (D,), b) minimising mean log(1 + exp(-y (x.w + b))) + alpha/2 |w|^2 for x (N, D), y (N,) in
    {-1, +1} (the bias is not penalised), by scipy's L-BFGS with the exact gradient."""
    from scipy.optimize import minimize

    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64)

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        margin = y * (x @ w + b)
        value = np.logaddexp(0.0, -margin).mean() + 0.5 * alpha * w @ w
        weight = -y * np.exp(-np.logaddexp(0.0, margin)) / len(y)   # d loss / d (x.w + b): -y sigmoid(-margin) / N
        return value, np.append(x.T @ weight + alpha * w, weight.sum())

    theta = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                     options={"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-14}).x
    return theta[:-1], float(theta[-1])


def fit_cav(positive: np.ndarray, negative: np.ndarray, *, alpha: float = 0.01, test_share: float = 0.33,
            seed: int = 0) -> Cav:
    """The CAV of `positive` (P, ...) against `negative` (Q, ...) activations: `logistic_regression` of
    the examples scaled to mean squared norm 1 (the direction is the same in the original units) on a
    seeded (1 - test_share) of them (tcav's train/test split), its accuracy on the rest."""
    x = np.concatenate([positive.reshape(len(positive), -1), negative.reshape(len(negative), -1)]).astype(np.float64)
    # alpha is for examples of mean squared norm 1, so that it means the same at every layer and for
    # every scale of activations: unscaled, a small CNN's (norms near 20) let the L2 term vanish and the
    # CAV fit noise dimensions (a planted concept's scores then flip between 0 and 1 from run to run)
    x /= max(float(np.sqrt(np.mean(np.sum(x * x, axis=1)))), 1e-12)
    y = np.concatenate([np.ones(len(positive)), -np.ones(len(negative))])
    order = np.random.default_rng(seed).permutation(len(y))
    held = max(1, int(round(test_share * len(y)))) if test_share > 0 else 0
    test, train = order[:held], order[held:]
    w, b = logistic_regression(x[train], y[train], alpha)
    norm = np.linalg.norm(w)
    accuracy = float(np.mean(np.sign(x[test] @ w + b) == y[test])) if held else float("nan")
    return Cav((w / norm if norm > 0 else w).astype(np.float32), accuracy)


def _both(maps, grads):
    return maps, grads


def layer_gradients(model, layer: str, images: np.ndarray, targets, batch: int | None = None) -> tuple:
    """(activations (N, D), d logit_target / d activations (N, D)), flattened, float32, of a logits
    `model` at `layer` (its output), `targets` (N,) or one class for every image; N >= 1."""
    fn = layer_gradient_fn(model, layer, _both, "tcav")
    images = np.asarray(images, np.float32)
    targets = np.broadcast_to(np.asarray(targets, np.int32), (len(images),))
    batch = batch or batch_size(model, gradients=True, cap=256)
    acts, grads = [], []
    for i in range(0, len(images), batch):
        a, g = fn(images[i:i + batch], targets[i:i + batch])
        acts.append(np.asarray(a, np.float32).reshape(len(a), -1))
        grads.append(np.asarray(g, np.float32).reshape(len(g), -1))
    return np.concatenate(acts), np.concatenate(grads)


def tcav_score(gradients: np.ndarray, cav: np.ndarray) -> float:
    """The share of the images (rows of `gradients` (N, D), d logit / d activations) whose directional
    derivative along `cav` (D,) is positive."""
    return float(np.mean(gradients @ cav > 0))


def t_test(scores, baseline) -> float:
    """Two-sided p-value of Student's t-test of `scores` against `baseline` (scipy.stats.ttest_ind).
    Both constant (no variance, where scipy answers NaN): 1 when equal, 0 when not."""
    import warnings

    from scipy.stats import ttest_ind

    a, b = np.asarray(scores, np.float64), np.asarray(baseline, np.float64)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():   # scipy warns of precision when one side is nearly constant (0/1 scores)
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(a, b).pvalue)
