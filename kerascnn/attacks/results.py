"""What the attacks return: arrays and the numbers derived from them (nothing drawn here).

Probabilities in a result are re-predicted from the returned arrays, never what the loop believed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class Repredicted:
    """What every attack result shares: `probabilities` (N, K), re-predicted by the model from the
    images the attack returns (never what its loop believed), and the class each is predicted as."""
    probabilities: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        """(N,) the class each returned image is predicted as."""
        return self.probabilities.argmax(axis=1)


@dataclass
class AttackResult(Repredicted):
    """Images grown from Gaussian noise (nontargeted, targeted), one per target class."""
    kind: str                       # "nontargeted" or "targeted"
    images: np.ndarray              # (N, H, W, C) float32; in [0, 1] unless clip=False
    targets: np.ndarray             # (N,) int64: the class each image was pushed towards
    probabilities: np.ndarray       # (N, K) float64, re-predicted from `images`
    steps_used: np.ndarray          # (N,) int64: updates each image received
    steps_run: int                  # steps the batch ran (fewer than `steps` when all stopped early)
    seconds: float                  # wall time of the optimisation (compilation included)
    settings: dict                  # the arguments: steps, lr, seed, clip, confidence, beta...
    confidence: float | None = None  # success needs this probability too (None: the prediction alone)
    guide: np.ndarray | None = None  # (H, W, C) the image a targeted attack stays close to
    class_names: tuple | None = None  # names of the classes, for figures (None: the numbers)

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
class NoiseResult(Repredicted):
    """Source images, the noise found for each, and what the model says before and after."""
    target: int
    originals: np.ndarray               # (N, H, W, C) float32 in [0, 1]
    images: np.ndarray                  # (N, H, W, C) the noisy images (originals + noise)
    noise: np.ndarray                   # (N, H, W, C) images - originals: the noise as applied
    labels: np.ndarray                  # (N,) int64 true classes, -1 where unknown (a user's picture)
    original_probabilities: np.ndarray  # (N, K) float64
    probabilities: np.ndarray           # (N, K) float64, re-predicted from `images`
    steps_used: np.ndarray              # (N,) int64
    steps_run: int
    seconds: float
    confidence: float
    settings: dict
    class_names: tuple | None = None    # names of the classes, for figures (None: the numbers)

    @property
    def original_predicted(self) -> np.ndarray:
        return self.original_probabilities.argmax(axis=1)

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
    noise: np.ndarray             # (H, W, C) the noise added to every image
    clean: np.ndarray             # (N, H, W, C)
    noisy: np.ndarray             # (N, H, W, C) clean + noise (clipped to [0, 1] when clip)
    labels: np.ndarray            # (N,) int64 true classes
    clean_predicted: np.ndarray   # (N,) int64
    noisy_probabilities: np.ndarray  # (N, K) float64
    indices: np.ndarray | None = None  # (N,) where the images came from (test-split indices)
    class_names: tuple | None = None   # names of the classes, for figures (None: the numbers)

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


