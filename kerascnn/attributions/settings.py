"""How attribution maps are made: the methods, their names in tables, and Settings (the one home of
the methods' defaults). kerascnn.attributions.gradients computes the maps and re-exports these."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kerascnn.attributions.patches import map_stride_for
from kerascnn.errors import BadValue

METHODS = ("saliency", "smoothgrad", "integrated-gradients", "gradcam", "occlusion")
#: How the methods are written in tables and figures.
LABELS = {"saliency": "saliency", "smoothgrad": "SmoothGrad", "integrated-gradients": "integrated gradients",
          "gradcam": "Grad-CAM", "occlusion": "occlusion", "random": "random order",
          "brightness": "image brightness"}
#: Occlusion as an attribution keeps at most this many positions a side (its stride grows on large images).
ATTRIBUTION_SIDE = 32


@dataclass
class Settings:
    """How the maps are made: the one home of the methods' defaults (held by every experiment that explains)."""
    methods: tuple[str, ...] = METHODS
    layer: str | None = None          # Grad-CAM's convolution layer (None: the last)
    ig_steps: int = 64                # integrated gradients: gradient points on the path from black
    smoothgrad_samples: int = 32      # noisy copies per image
    smoothgrad_noise: float = 0.15    # std of their Gaussian noise, in pixel units (15% of [0, 1])
    occlusion_patch: int | None = None  # side of the black square (None: a seventh of the image side, 4 on MNIST)
    seed: int = 0                     # SmoothGrad's noise
    occlusion_stride: int | None = None  # between the square's positions (None: 1, or more so that at most 32 a
                                         # side: 7 at 224 px, 784 forward passes an image)

    def check(self) -> "Settings":
        methods = parse_methods(self.methods)
        if isinstance(self.ig_steps, bool) or int(self.ig_steps) != self.ig_steps or self.ig_steps < 1:
            raise BadValue("ig_steps", f"must be a whole number of at least 1, got {self.ig_steps}")
        if self.smoothgrad_samples < 1:
            raise BadValue("smoothgrad_samples", f"must be at least 1, got {self.smoothgrad_samples}")
        if not np.isfinite(self.smoothgrad_noise) or self.smoothgrad_noise < 0:
            raise BadValue("smoothgrad_noise", f"must be a number >= 0, got {self.smoothgrad_noise}")
        if self.occlusion_patch is not None and self.occlusion_patch < 1:
            raise BadValue("occlusion_patch", f"must be at least 1 pixel, got {self.occlusion_patch}")
        if self.occlusion_stride is not None and (isinstance(self.occlusion_stride, bool) or self.occlusion_stride < 1
                                                  or int(self.occlusion_stride) != self.occlusion_stride):
            raise BadValue("occlusion_stride",
                           f"must be a whole number of pixels, at least 1, got {self.occlusion_stride}")
        return Settings(methods, self.layer, int(self.ig_steps), self.smoothgrad_samples, self.smoothgrad_noise,
                        self.occlusion_patch, self.seed, self.occlusion_stride)

    def patch(self, shape) -> int:
        return self.occlusion_patch if self.occlusion_patch is not None else max(1, min(shape[:2]) // 7)

    def stride(self, shape) -> int:
        """Occlusion's stride on images of `shape` (H, W, ...): the one set, else 1 while that is at most
        ATTRIBUTION_SIDE positions a side, else the smallest that keeps it so."""
        if self.occlusion_stride is not None:
            return int(self.occlusion_stride)
        return map_stride_for(tuple(shape), self.patch(shape), side=ATTRIBUTION_SIDE)


def parse_methods(spec) -> tuple[str, ...]:
    """'saliency,gradcam', 'all' or a sequence of names -> the methods in METHODS order; BadValue("method") otherwise."""
    from kerascnn.lists import split_list

    names = [str(m).lower() for m in split_list(spec, "method")]  # an empty item ('saliency,,gradcam') is refused
    if names == ["all"]:
        return METHODS
    names = [{"ig": "integrated-gradients", "grad-cam": "gradcam"}.get(m, m) for m in names]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        what = f"unknown method {unknown[0]!r}" if unknown else "no method given"
        raise BadValue("method", f"{what}: choose from {', '.join(METHODS)} (comma-separated)")
    return tuple(m for m in METHODS if m in names)
