"""What the eps-bounded and minimal-norm attacks return (fgm, pgd, minimal): arrays and the numbers
derived from them, re-predicted from the returned arrays (nothing drawn here)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.attacks.loop import predict_proba
from kerascnn.attacks.results import Repredicted


def _norms(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) L2 and L-infinity lengths of perturbations (N, H, W, C), float64."""
    flat = np.asarray(delta, np.float64).reshape(len(delta), -1)
    return np.sqrt(np.sum(np.square(flat), axis=1)), np.max(np.abs(flat), axis=1, initial=0.0)


@dataclass
class BoundedResult(Repredicted):
    """Images changed within an eps-ball around each original (fgm, pgd), re-predicted from the arrays."""
    attack: str                     # "fgm" or "pgd"
    norm: str                       # "linf" or "l2": the ball's norm
    eps: np.ndarray                 # (N,) float32 radius of each image's ball
    originals: np.ndarray           # (N, H, W, C) float32 in [0, 1]
    images: np.ndarray              # (N, H, W, C) float32 in [0, 1], within eps of the originals
    labels: np.ndarray              # (N,) int64 true classes (untargeted) or targets (targeted)
    targeted: bool
    probabilities: np.ndarray       # (N, K) float64, re-predicted from `images`
    correct_per_restart: np.ndarray  # (R, N) bool: predicted as `labels` after restarts 1..R (untargeted)
    seconds: float
    settings: dict

    @property
    def success(self) -> np.ndarray:
        """(N,) bool: fooled (untargeted: not predicted as its label; targeted: predicted as its target)."""
        hit = self.predicted == self.labels
        return hit if self.targeted else ~hit

    @property
    def distance(self) -> np.ndarray:
        """(N,) the length of each perturbation in the ball's norm."""
        l2, linf = _norms(self.images - self.originals)
        return linf if self.norm == "linf" else l2

    def within_ball(self, tolerance: float = 1e-5) -> np.ndarray:
        """(N,) bool: in [0, 1] and no farther than eps from the original (float32 rounding allowed)."""
        inside = self.distance <= self.eps.astype(np.float64) * (1 + tolerance) + tolerance
        return inside & np.all((self.images >= 0) & (self.images <= 1), axis=tuple(range(1, self.images.ndim)))

    def to_dict(self) -> dict:
        l2, linf = _norms(self.images - self.originals)
        return {"attack": self.attack, "norm": self.norm, "targeted": self.targeted, "count": len(self.labels),
                "successes": int(self.success.sum()), "within_ball": bool(self.within_ball().all()),
                "correct_per_restart": [int(c.sum()) for c in self.correct_per_restart],
                "mean_l2": float(l2.mean()), "mean_linf": float(linf.mean()), "settings": self.settings,
                "seconds": round(self.seconds, 3)}


def bounded_result(model, attack, norm, eps, originals, images, labels, targeted, correct_per_restart, seconds,
                   settings) -> BoundedResult:
    """A BoundedResult whose probabilities are re-predicted from `images` (and the one-restart record
    made from them when none is given)."""

    probabilities = predict_proba(model, images)
    if correct_per_restart is None:
        correct_per_restart = (probabilities.argmax(axis=1) == labels)[None]
    return BoundedResult(attack, norm, np.asarray(eps, np.float32), originals, images.astype(np.float32),
                         np.asarray(labels, np.int64), bool(targeted), probabilities,
                         np.asarray(correct_per_restart, bool), seconds, settings)


@dataclass
class MinimalResult(Repredicted):
    """The smallest perturbation found per image (attacks.minimal), re-predicted from the arrays."""
    norm: str                       # the norm minimised: "l2" or "linf"
    originals: np.ndarray           # (N, H, W, C) float32 in [0, 1]
    images: np.ndarray              # (N, H, W, C) the perturbed images (the original where none was found)
    labels: np.ndarray              # (N,) int64: the classes to move away from (true or clean prediction)
    target: int | None              # the class to reach instead (None: any other)
    confidence: float | None        # with a target: the probability to reach
    probabilities: np.ndarray       # (N, K) float64, re-predicted from `images`
    clean_probabilities: np.ndarray  # (N, K) float64 of the originals
    seconds: float
    settings: dict

    @property
    def success(self) -> np.ndarray:
        """(N,) bool: the returned image meets the goal, as re-predicted."""
        if self.target is None:
            return self.predicted != self.labels
        hit = self.predicted == self.target
        return hit & (self.probabilities[:, self.target] >= self.confidence) if self.confidence else hit

    @property
    def distance(self) -> np.ndarray:
        """(N,) the norm of each perturbation found: 0 where the original meets the goal already,
        inf where no perturbation meeting it was found."""
        l2, linf = _norms(self.images - self.originals)
        size = linf if self.norm == "linf" else l2
        return np.where(self.success, size, np.inf)

    def median(self) -> float:
        """The median distance over all images (inf counts as larger than any found)."""
        return float(np.median(self.distance))

    def to_dict(self) -> dict:
        l2, linf = _norms(self.images - self.originals)
        return {"norm": self.norm, "target": self.target, "confidence": self.confidence, "count": len(self.labels),
                "successes": int(self.success.sum()), "median": _finite(self.median()),
                "mean_found": _finite(float(self.distance[self.success].mean())) if self.success.any() else None,
                "distance": [_finite(float(d)) for d in self.distance], "l2": l2.tolist(), "linf": linf.tolist(),
                "labels": self.labels.tolist(), "predicted": self.predicted.tolist(), "settings": self.settings,
                "seconds": round(self.seconds, 3)}


def _finite(value: float) -> float | None:
    """JSON has no infinity: None stands for 'not found'."""
    return value if np.isfinite(value) else None


def minimal_result(model, norm, originals, images, labels, target, confidence, seconds, settings) -> MinimalResult:

    return MinimalResult(norm, originals, images.astype(np.float32), np.asarray(labels, np.int64), target, confidence,
                         predict_proba(model, images), predict_proba(model, originals), seconds, settings)
