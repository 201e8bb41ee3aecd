"""Attacks on arrays, torchattacks-style: `kc.attacks.pgd(model, x, y, eps) -> adversarial images`.

The model is the user's own keras.Model: a final softmax is read through and its input domain folded
in, as the Subject does (kerascnn.model.subject), so eps is a fraction of the pixel range. Arguments:

    model        a keras.Model image classifier (one input (H, W, C), one output of K classes)
    x            (N, H, W, C) float in [0, 1], or uint8 0-255 (divided by 255); (N, H, W) for one channel
    y            (N,) int: true classes (fgsm and pgd with targeted=True: the classes to reach)
    eps          the ball's radius in [0, 1] pixel units, one number or one per image
                 (None: 8/255 for linf, 0.5 for l2, RobustBench's CIFAR-10 radii)
    norm         "linf" or "l2"
    batch_size   images per model call, for everything inside (None: as many as fit the memory budget)
    input_range, preprocess   what the model takes, when it is not read off the model (kerascnn.model.domain)

Each returns float32 images shaped as x, in [0, 1], within eps of x (up to float32 rounding); a bad
argument raises kerascnn.errors.BadValue naming it, before any work.
"""
from __future__ import annotations

import weakref

import numpy as np

from kerascnn.attacks import auto_pgd, boundary, ensemble, minimal_norm, projected_gradient, square_search
from kerascnn.attacks import fgm as fast_gradient
from kerascnn.attacks.fgm import check_norm, per_image_eps
from kerascnn.errors import BadValue, UserError
from kerascnn.model.domain import InputDomain

__all__ = ["fgsm", "pgd", "apgd", "autoattack", "fab", "square", "minimal"]

#: eps when none is given: RobustBench's CIFAR-10 radii.
DEFAULT_EPS = {"linf": 8 / 255, "l2": 0.5}
#: float32 rounding allowed at the ball's edge (relative and absolute), as BoundedResult.within_ball allows.
TOLERANCE = 1e-5

_SUBJECTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------- the user's objects
def subject_of(model, input_range=None, preprocess=None):
    """The Subject of a keras.Model (its `logits_model` takes pixels in [0, 1]), made once per model
    and input domain, so that repeated calls reuse its compiled functions. BadValue("model") otherwise."""
    import keras

    if not isinstance(model, keras.Model):
        raise BadValue("model", f"must be a keras.Model, got {type(model).__name__}")
    if input_range is not None and not isinstance(input_range, str):
        try:
            low, high = (float(v) for v in input_range)
        except (TypeError, ValueError):
            raise BadValue("input_range", f"expected (low, high) such as (0, 255), got {input_range!r}") from None
        input_range = f"{low!r},{high!r}"
    domain = InputDomain.given(input_range, preprocess)
    per_model = _SUBJECTS.setdefault(model, {})
    if domain not in per_model:
        from kerascnn.model.subject import Subject

        try:
            per_model[domain] = Subject(model, check=False, domain=domain)
        except BadValue:
            raise
        except UserError as e:  # two outputs, no image input, ...
            raise BadValue("model", str(e)) from None
    return per_model[domain]


def as_pixels(x, shape: tuple[int, int, int]) -> np.ndarray:
    """x (N, H, W, C) float in [0, 1] or integers 0-255, or (N, H, W) for one channel -> (N, H, W, C)
    float32 in [0, 1]. BadValue("x") for anything else, floats outside [0, 1] included."""
    array = np.asarray(x)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise BadValue("x", f"must be an array of pixels, got dtype {array.dtype}")
    if shape[-1] == 1 and array.shape[1:] == shape[:2]:
        array = array[..., None]
    if array.ndim != 4 or array.shape[1:] != tuple(shape) or len(array) == 0:
        raise BadValue("x", f"must be images (N, {', '.join(map(str, shape))}) as the model takes, got shape "
                            f"{np.shape(x)}")
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise BadValue("x", f"integer pixels must be 0-255, got {array.min()} to {array.max()}")
        return array.astype(np.float32) / np.float32(255.0)
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise BadValue("x", "holds NaN or infinite pixels")
    if array.min() < 0.0 or array.max() > 1.0:
        raise BadValue("x", f"float pixels in [{array.min():g}, {array.max():g}]: give floats in [0, 1] or uint8 "
                            f"0-255 (input_range= says what the model takes, not what x holds)")
    return array


def as_classes(values, count: int, num_classes: int, param: str = "y") -> np.ndarray:
    """(N,) class numbers of the model -> int64; BadValue(param) for another shape, length or class."""
    array = np.asarray(values)
    whole = np.issubdtype(array.dtype, np.integer) or (np.issubdtype(array.dtype, np.floating)
                                                        and bool(np.all(np.mod(array, 1) == 0)))
    if array.ndim != 1 or not whole:
        raise BadValue(param, f"must be (N,) integer class numbers, got shape {array.shape} of {array.dtype}")
    if len(array) != count:
        raise BadValue(param, f"has {len(array)} entries for {count} images in x: give one per image")
    if array.min() < 0 or array.max() >= num_classes:
        raise BadValue(param, f"must be classes 0-{num_classes - 1} of the model, got {array.min()} to {array.max()}")
    return array.astype(np.int64)


def check_count(value, param: str, low: int = 1) -> int:
    """A whole number >= low (not a bool); BadValue(param) otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise BadValue(param, f"must be a whole number of at least {low}, got {value!r}")
    return int(value)


def check_batch_size(batch_size) -> int | None:
    return None if batch_size is None else check_count(batch_size, "batch_size")


def chunks(count: int, batch_size: int | None) -> list[tuple[int, slice]]:
    """(chunk number, slice) over `count` images, batch_size at a time (None: all at once)."""
    size = batch_size or count
    return [(k, slice(i, i + size)) for k, i in enumerate(range(0, count, size))]


def _radii(eps, norm: str, count: int) -> np.ndarray:
    check_norm(norm)
    eps = DEFAULT_EPS[norm] if eps is None else eps
    try:
        return per_image_eps(eps, count)
    except (TypeError, ValueError):  # numpy's, for what is not a number
        raise BadValue("eps", f"must be a number >= 0 or one per image, got {eps!r}") from None


def _attack(run, model, x, y, eps, norm: str, seed, batch_size, input_range, preprocess) -> np.ndarray:
    """run(logits model, images, labels, radii, seed, batch_size) -> adversarial images, on each chunk
    of x; the first chunk gets `seed` itself, so that one chunk is exactly the internal call."""
    subject = subject_of(model, input_range, preprocess)
    pixels = as_pixels(x, subject.input_shape)
    labels = as_classes(y, len(pixels), subject.num_classes)
    radii = _radii(eps, norm, len(pixels))
    batch_size = check_batch_size(batch_size)
    seed = 0 if seed is None else check_count(seed, "seed", 0)
    out = np.empty_like(pixels)
    for k, part in chunks(len(pixels), batch_size):
        chunk_seed = seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
        out[part] = run(subject.logits_model, pixels[part], labels[part], radii[part], chunk_seed, batch_size)
    return out.reshape(np.shape(x))


# ---------------------------------------------------------------------------- the attacks
def fgsm(model, x, y, eps=None, *, norm: str = "linf", targeted: bool = False, batch_size: int | None = None,
         input_range=None, preprocess=None) -> np.ndarray:
    """FGSM: one step of eps along the gradient of the cross-entropy (for l2, the fast gradient method).

    Arguments:
        targeted: y are the classes to reach. The rest: see the module docstring.
    Returns:
        (N, H, W, C) float32: x + eps * sign(grad) (linf) or eps * grad / ||grad|| (l2), clipped to [0, 1].
    Example:
        >>> x_adv = kc.attacks.fgsm(model, x_test[:100], y_test[:100], eps=0.1)
    """
    return _attack(lambda m, images, labels, radii, seed, size: fast_gradient.fgm(
        m, images, labels, radii, norm=norm, targeted=targeted, batch_size=size).images,
        model, x, y, eps, norm, None, batch_size, input_range, preprocess)


def pgd(model, x, y, eps=None, *, norm: str = "linf", steps: int = 40,
        step_fraction: float = projected_gradient.STEP_FRACTION, restarts: int = 1, targeted: bool = False,
        seed: int = 0, batch_size: int | None = None, input_range=None, preprocess=None) -> np.ndarray:
    """PGD (Madry et al. 2018): from a random point of the ball, `steps` steps of step_fraction * eps,
    each projected back onto the ball; an image stops at the first step that fools the model.

    Arguments:
        restarts: attempts from new random starts, on the images not yet fooled.
        targeted: y are the classes to reach. The rest: see the module docstring.
    Returns:
        (N, H, W, C) float32 in [0, 1], within eps of x.
    Example:
        >>> x_adv = kc.attacks.pgd(model, x_test[:100], y_test[:100], eps=0.3, steps=100)
    """
    return _attack(lambda m, images, labels, radii, s, size: projected_gradient.pgd(
        m, images, labels, radii, norm=norm, steps=steps, step_fraction=step_fraction, restarts=restarts,
        targeted=targeted, seed=s, batch_size=size).images, model, x, y, eps, norm, seed, batch_size, input_range,
        preprocess)


def apgd(model, x, y, eps=None, *, norm: str = "linf", loss: str | None = None, target_classes: int | None = None,
         steps: int = 100, restarts: int = 1, eot: int = 1, seed: int = 0, batch_size: int | None = None,
         input_range=None, preprocess=None) -> np.ndarray:
    """Auto-PGD (Croce and Hein 2020): PGD with momentum and a step size that halves by itself.

    Arguments:
        loss: "ce" (None) or "dlr" (the difference of logits ratio).
        target_classes: k for APGD-T, the targeted DLR loss towards each of the k most likely other
            classes in turn (y stay the true labels; loss "dlr" or None). None: untargeted.
        eot: gradients averaged per step, one pass after the other (for models with randomness).
    Returns:
        (N, H, W, C) float32 in [0, 1], within eps of x (x itself where the model is wrong already).
    Example:
        >>> x_adv = kc.attacks.apgd(model, x, y, eps=8 / 255, loss="dlr")
    """
    if target_classes is not None:
        if loss not in (None, "dlr"):
            raise BadValue("loss", f"APGD-T (target_classes) uses the targeted DLR loss: 'dlr' or None, not {loss!r}")
        check_count(target_classes, "target_classes")
    elif loss not in (None, "ce", "dlr"):
        raise BadValue("loss", f"must be 'ce' or 'dlr', got {loss!r}")
    loss = "dlr-t" if target_classes is not None else loss or "ce"
    return _attack(lambda m, images, labels, radii, s, size: auto_pgd.apgd(
        m, images, labels, radii, norm=norm, loss=loss, target_classes=target_classes or 9, steps=steps,
        restarts=restarts, eot=eot, seed=s, batch_size=size).images, model, x, y, eps, norm, seed, batch_size,
        input_range, preprocess)


def autoattack(model, x, y, eps=None, *, norm: str = "linf", version: str = "standard", components=None,
               steps: int = ensemble.STEPS, queries: int = ensemble.QUERIES, seed: int = 0,
               batch_size: int | None = None, input_range=None, preprocess=None) -> np.ndarray:
    """AutoAttack (Croce and Hein 2020): APGD-CE, APGD-T, FAB-T and Square, each on the images still right.

    Arguments:
        version: "standard", "plus" or "rand"; components: a subset to run instead, in order (apgd-ce,
            apgd-dlr, apgd-t, fab, fab-t, square); steps of the gradient attacks; queries of Square.
    Returns:
        (N, H, W, C) float32 in [0, 1], within eps of x: the first component's image that fooled the model, or x.
    Example:
        >>> x_adv = kc.attacks.autoattack(model, x, y, eps=8 / 255)
    """
    return _attack(lambda m, images, labels, radii, s, size: ensemble.autoattack(
        m, images, labels, radii, norm=norm, version=version, components=components, steps=steps, queries=queries,
        seed=s, batch_size=size).images, model, x, y, eps, norm, seed, batch_size, input_range, preprocess)


def fab(model, x, y, eps=None, *, norm: str = "linf", target_classes: int | None = 9, steps: int = 100,
        restarts: int = 1, seed: int = 0, batch_size: int | None = None, input_range=None,
        preprocess=None) -> np.ndarray:
    """FAB (Croce and Hein 2020): steps onto the linearised decision boundary, towards the smallest
    perturbation, kept where it lies within eps (`minimal` has no eps).

    Arguments:
        target_classes: k for FAB-T (AutoAttack's), the boundary to each of the k most likely other
            classes in turn; None: untargeted FAB (the nearest boundary, a Jacobian per image).
    Returns:
        (N, H, W, C) float32 in [0, 1]: the smallest adversarial found within eps, or x.
    Example:
        >>> x_adv = kc.attacks.fab(model, x, y, eps=0.3)
    """
    if target_classes is not None:
        check_count(target_classes, "target_classes")

    def run(m, images, labels, radii, s, size):
        result = boundary.fab(m, images, labels, radii, norm=norm, targeted=target_classes is not None,
                              target_classes=target_classes or 9, steps=steps, restarts=restarts, seed=s,
                              batch_size=size)
        inside = result.success & (result.distance <= radii * (1 + TOLERANCE) + TOLERANCE)
        return np.where(inside[:, None, None, None], result.images, images)

    return _attack(run, model, x, y, eps, norm, seed, batch_size, input_range, preprocess)


def square(model, x, y, eps=None, *, norm: str = "linf", queries: int = 5000, p_init: float = 0.8, seed: int = 0,
           batch_size: int | None = None, input_range=None, preprocess=None) -> np.ndarray:
    """The Square Attack (Andriushchenko et al. 2020): random square changes, kept where they lower the
    margin; no gradients, so gradient masking cannot hide a model from it.

    Arguments:
        queries: model calls per image at most; p_init: the first squares' share of the pixels.
    Returns:
        (N, H, W, C) float32 in [0, 1], within eps of x (x itself where the model is wrong already).
    Example:
        >>> x_adv = kc.attacks.square(model, x, y, eps=8 / 255, queries=1000)
    """
    return _attack(lambda m, images, labels, radii, s, size: square_search.square(
        m, images, labels, radii, norm=norm, queries=queries, p_init=p_init, seed=s, batch_size=size).images,
        model, x, y, eps, norm, seed, batch_size, input_range, preprocess)


def minimal(model, x, y=None, *, norm: str = "linf", target: int | None = None, confidence: float | None = None,
            steps: int = 300, batch_size: int | None = None, input_range=None, preprocess=None) -> np.ndarray:
    """The smallest perturbation found (FMN, Pintor et al. 2021, and a bisection to the boundary) that
    changes the prediction from y (None: the model's own), or with `target` makes the model predict it.

    Arguments:
        target: a class to reach; confidence: with a target, the probability to reach. No eps.
    Returns:
        (N, H, W, C) float32 in [0, 1]: x plus the smallest perturbation found; x itself where it meets
        the goal already or where none was found (tell them apart by the model's predictions).
    Example:
        >>> x_min = kc.attacks.minimal(model, x, y, norm="l2")
    """
    subject = subject_of(model, input_range, preprocess)
    pixels = as_pixels(x, subject.input_shape)
    labels = None if y is None else as_classes(y, len(pixels), subject.num_classes)
    batch_size = check_batch_size(batch_size)
    out = np.empty_like(pixels)
    for _, part in chunks(len(pixels), batch_size):
        out[part] = minimal_norm.minimal(subject.logits_model, pixels[part], None if labels is None else labels[part],
                                         norm=norm, target=target, confidence=confidence, steps=steps,
                                         batch_size=batch_size).images
    return out.reshape(np.shape(x))
