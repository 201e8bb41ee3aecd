"""The options of `kerascnn robustness` (experiments.robustness): the one home of its defaults."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kerascnn.attacks.ensemble import COMPONENTS, VERSIONS, check_version
from kerascnn.attacks.fgm import check_epsilons, check_norm
from kerascnn.attacks.loop import check_settings
from kerascnn.errors import BadValue

#: What --attack takes: the two classic columns, AutoAttack's components, and the whole ensemble.
ATTACKS = ("fgsm", "pgd") + COMPONENTS + ("autoattack",)
DEFAULT_ATTACKS = ("fgsm", "apgd-ce")
#: eps of the curve when none are given: Madry et al.'s MNIST range for linf; a matching L2 range.
DEFAULT_EPS = {"linf": (0.0, 0.05, 0.1, 0.2, 0.3), "l2": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)}
PGD_STEPS, ITERATIONS = 40, 100
#: PGD's step as a fraction of eps, times its step count (Madry et al.: 2.5 eps / steps).
PGD_REACH = 2.5


@dataclass
class Options:
    attacks: tuple = DEFAULT_ATTACKS  # fgsm, pgd, AutoAttack components, or autoattack (the version's)
    norm: str = "linf"               # "linf" or "l2"
    eps: tuple | None = None         # radii (None: DEFAULT_EPS[norm])
    steps: int | None = None         # PGD steps (None: 40); APGD and FAB iterations (None: 100)
    step_fraction: float | None = None  # PGD step / eps (None: 2.5 / steps)
    restarts: int = 1                # PGD random restarts (each only on images not yet fooled)
    version: str = "standard"        # AutoAttack's version: standard, plus or rand
    queries: int = 5000              # Square's queries per image
    count: int = 1000                # the first `count` test images
    sanity: int = 100                # images attacked at a huge eps, where accuracy must reach 0 (0: skip)
    seed: int = 0
    batch_size: int | None = None    # images per attack call (None: as many as fit; kerascnn.model.batching)

    def resolved(self) -> "Options":

        check_norm(self.norm)
        check_version(self.version)
        attacks = tuple(dict.fromkeys("fgsm" if a == "fgm" else a for a in self.attacks))
        if not attacks or any(a not in ATTACKS for a in attacks):
            raise BadValue("attacks", f"choose from {', '.join(ATTACKS)}, got {', '.join(self.attacks) or 'none'}")
        if "autoattack" in attacks and any(a in COMPONENTS for a in attacks):
            raise BadValue("attacks", "give autoattack or some of its components, not both")
        check_settings(steps=self.steps)
        for name in ("count", "restarts", "batch_size", "queries"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise BadValue(name, f"must be at least 1, got {getattr(self, name)}")
        if self.step_fraction is not None and not (np.isfinite(self.step_fraction) and self.step_fraction > 0):
            raise BadValue("step_fraction", f"must be a positive number, got {self.step_fraction}")
        if self.sanity < 0:
            raise BadValue("sanity", f"must be 0 or more, got {self.sanity}")
        eps = check_epsilons(DEFAULT_EPS[self.norm] if self.eps is None else self.eps)
        return replace(self, attacks=attacks, eps=eps)

    @property
    def pgd_steps(self) -> int:
        return self.steps or PGD_STEPS

    @property
    def pgd_step_fraction(self) -> float:
        return self.step_fraction or PGD_REACH / self.pgd_steps

    @property
    def components(self) -> tuple:
        """The ensemble's components, in order (empty: no ensemble column)."""
        if "autoattack" in self.attacks:
            return VERSIONS[self.version]
        return tuple(a for a in self.attacks if a in COMPONENTS)

    @property
    def ensemble(self) -> str | None:
        """The ensemble column's key: 'autoattack', or the components joined by '+'."""
        if "autoattack" in self.attacks:
            return "autoattack"
        return "+".join(self.components) or None

    @property
    def columns(self) -> tuple:
        return tuple(a for a in self.attacks if a in ("fgsm", "pgd")) + ((self.ensemble,) if self.ensemble else ())
