"""Fooling a model, as `kerascnn attack ...` does: `kc.attack.nontargeted`, `targeted`, `noise`,
`minimal` and `universal`. The options are the commands' (`--step-fraction` is `step_fraction=`),
with the defaults of the same Options dataclasses; model, data, input domain and the image are given
as to every public function (kerascnn.api.inspection). Each returns a Result.

For attacks on your own batch of arrays, torchattacks-style, see `kc.attacks`.
"""
from __future__ import annotations

from kerascnn.api.calls import build_options, progress_bar, with_options
from kerascnn.api.inputs import as_pixels, subject
from kerascnn.api.results import Result
from kerascnn.experiments import minimal as _minimal
from kerascnn.experiments import noise as _noise
from kerascnn.experiments import nontargeted as _nontargeted
from kerascnn.experiments import targeted as _targeted
from kerascnn.experiments import universal as _universal

__all__ = ["nontargeted", "targeted", "noise", "minimal", "universal"]


def _run(experiment, command, model, data, domain: dict, options: dict, progress: bool, steps_field: str,
         label: str, **fixed) -> Result:
    s = subject(model, data, **domain)
    opts = build_options(experiment.Options, options, f"kc.attack.{command}", exclude=tuple(fixed), **fixed)
    with progress_bar(progress, label, getattr(opts, steps_field)) as bar:
        raw = experiment.run(s, opts, progress=bar)
    return Result(experiment, raw, f"attack {command}", [s])


@with_options(_nontargeted.Options)
def nontargeted(model=None, data=None, *, input_range=None, preprocess=None, class_names=None, progress: bool = True,
                **options) -> Result:
    """One image per class grown from Gaussian noise until the model calls it that class.

    Arguments:
        classes: "all" or e.g. "0-4,7". steps, lr, optimizer ("sign" or "adam"), confidence, seed, clip.

    Returns:
        Result with nontargeted.png and images.npy; `.attack.success` per class.

    Example:
        >>> kc.attack.nontargeted(model, (x_test, y_test), steps=200)
    """
    return _run(_nontargeted, "nontargeted", model, data, dict(input_range=input_range, preprocess=preprocess,
                class_names=class_names), options, progress, "steps", "nontargeted")


@with_options(_targeted.Options)
def targeted(model=None, data=None, *, input_range=None, preprocess=None, class_names=None, progress: bool = True,
             **options) -> Result:
    """Images that look like a real test image (the guide) yet are predicted as each class.

    Arguments:
        guide: the guide's class (its first test image; None: 7 or the last class), or index: test image I.
        classes, beta (weight of mse(x, guide)), steps, lr, optimizer, seed, clip.

    Returns:
        Result with targeted.png and images.npy.
    """
    return _run(_targeted, "targeted", model, data, dict(input_range=input_range, preprocess=preprocess,
                class_names=class_names), options, progress, "steps", "targeted")


@with_options(_noise.Options)
def noise(model=None, data=None, *, input_range=None, preprocess=None, class_names=None, progress: bool = True,
          **options) -> Result:
    """Additive noise, from zero, that makes the model predict `target` for real images.

    Arguments:
        target: the class to reach. Sources: source_class (its first `count` test images), index (from
        test image I on) or image (an array or a picture file); by default the first test image of
        each of the first classes other than the target (the assignment's six on MNIST).
        norm: None (signed steps), "l2" or "linf" (the smallest such noise, by FMN).
        universal: add the first noise to this many random test images.

    Returns:
        Result with noise.png, universal.png, images.npy, originals.npy, noise.npy.
    """
    image = options.get("image")
    if image is not None and not isinstance(image, str) and not hasattr(image, "__fspath__"):
        options["image"] = as_pixels(image[None], "image", input_range)[0]
    return _run(_noise, "noise", model, data, dict(input_range=input_range, preprocess=preprocess,
                class_names=class_names), options, progress, "steps", "noise")


@with_options(_minimal.Options)
def minimal(model=None, data=None, *, input_range=None, preprocess=None, class_names=None, progress: bool = True,
            **options) -> Result:
    """The smallest perturbation (norm "l2" or "linf") that changes each of the first `count` test
    images' prediction (or reaches `target`), by FMN and, without a target, FAB-T.

    Returns:
        Result with norms.png and examples.png; `.to_dict()["median"]` (the median norm),
        `.attack.distance` per image (inf where none was found).
    """
    return _run(_minimal, "minimal", model, data, dict(input_range=input_range, preprocess=preprocess,
                class_names=class_names), options, progress, "steps", "minimal")


@with_options(_universal.Options)
def universal(model=None, data=None, *, input_range=None, preprocess=None, class_names=None, progress: bool = True,
              **options) -> Result:
    """A universal perturbation towards `target` within `eps` (norm "linf" or "l2"), fitted on `fit`
    training images, beside the one-image noise at the same budget, measured on `count` test images.

    Returns:
        Result with universal.png, universal_noise.npy, one_image_noise.npy.
    """
    return _run(_universal, "universal", model, data, dict(input_range=input_range, preprocess=preprocess,
                class_names=class_names), options, progress, "epochs", "universal")
