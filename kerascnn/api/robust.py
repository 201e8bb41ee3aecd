"""How robust a model is, as the commands of the same names measure it: `kc.robustness` (accuracy
under FGSM, PGD, APGD, AutoAttack along eps), `kc.certify` (randomized smoothing), `kc.corruptions`
(MNIST-C / ImageNet-C at severities 1-5) and `kc.transfer` (noise made on one model, measured on
others). Model, data and input domain are given as to every public function (kerascnn.api.inspection).
"""
from __future__ import annotations

from kerascnn.api.calls import build_options, progress_bar, with_options
from kerascnn.api.inputs import subject
from kerascnn.api.results import Result
from kerascnn.experiments import certify as _certify
from kerascnn.experiments import corruptions as _corruptions
from kerascnn.experiments import robustness as _robustness
from kerascnn.experiments import transfer as _transfer

__all__ = ["robustness", "certify", "corruptions", "transfer"]


@with_options(_robustness.Options)
def robustness(model=None, data=None, *, input_range=None, preprocess=None, class_names=None, progress: bool = True,
               **options) -> Result:
    """Accuracy of the first `count` test images under attack, along `eps`.

    Arguments:
        attacks: e.g. ("fgsm", "pgd"), "autoattack" or "fgsm,apgd-ce,apgd-t,fab-t,square".
        norm: "linf" or "l2". eps: a number or several (None: the norm's default ladder).
        steps, step_fraction, restarts, version, queries, count, sanity, seed, batch_size.

    Returns:
        Result with robustness.png and examples.png; `.to_dict()["accuracy"]` per attack and eps.

    Example:
        >>> kc.robustness(model, (x_test, y_test), attacks="fgsm,pgd", eps=[0.1, 0.3], count=200)
    """
    s = subject(model, data, input_range=input_range, preprocess=preprocess, class_names=class_names)
    if isinstance(options.get("attacks"), str):
        options["attacks"] = _names(options["attacks"], "attacks")
    if options.get("eps") is not None:
        from kerascnn.attacks.fgm import check_epsilons

        options["eps"] = check_epsilons(options["eps"] if not isinstance(options["eps"], (int, float))
                                        else (options["eps"],))
    opts = build_options(_robustness.Options, options, "robustness")
    s.task.check_count(opts.count)
    with progress_bar(progress, f"robustness ({opts.norm})", 100) as bar:
        raw = _robustness.run(s, opts, progress=bar)
    return Result(_robustness, raw, "robustness", [s])


@with_options(_certify.Options)
def certify(model=None, data=None, *, input_range=None, preprocess=None, class_names=None, progress: bool = True,
            **options) -> Result:
    """Certified L2 radii by randomized smoothing (Cohen et al. 2019) for the first `count` test images.

    Arguments:
        sigma: the noise's standard deviation. n0, n: Monte-Carlo samples to guess, then to certify.
        alpha: the failure probability. predict: PREDICT (a class or an abstention) instead.
        attack: attack each certificate within its radius (L2 APGD on the soft smoothed classifier),
            attack_steps (100) steps whose gradients average attack_samples (32) noise draws. seed, batch_size.
        precision: "fp32" (the model as it is), or "bf16": its bfloat16 copy classifies the noisy
            images, about 1.5 times the samples a second where the CPU has AVX512_BF16; the certificate is then
            the bfloat16 copy's.
        model None on MNIST: the shipped cnn_smooth (trained with noise_sd=0.25).

    Returns:
        Result with certify.png; `.radius` and `.prediction` per image (-1: abstained).
    """
    from kerascnn import SAVED_MODELS

    if model is None and data is None and (SAVED_MODELS / "cnn_smooth" / "model.keras").is_file():
        model = SAVED_MODELS / "cnn_smooth"
    s = subject(model, data, input_range=input_range, preprocess=preprocess, class_names=class_names)
    opts = build_options(_certify.Options, options, "certify")
    s.task.check_count(opts.count)
    with progress_bar(progress, "certify", opts.count) as bar:
        raw = _certify.run(s, opts, progress=bar)
    return Result(_certify, raw, "certify", [s])


@with_options(_corruptions.Options)
def corruptions(model=None, data=None, *, input_range=None, preprocess=None, class_names=None,
                progress: bool = True, **options) -> Result:
    """Accuracy under common corruptions (noise, blur, fog, rotation...) at severities 1-5.

    Arguments:
        suite: "mnist-c" or "common" (None: mnist-c for 28x28 grey images, else common). corruptions: names (None: the whole suite).
        severities, count, source ("local" or "tfds"), baseline (a model for mCE), others (more models).

    Returns:
        Result with corruptions.png and the examples; accuracy per corruption and severity.
    """
    s = subject(model, data, input_range=input_range, preprocess=preprocess, class_names=class_names)
    if "others" in options:
        options["others"] = tuple(str(p) for p in options["others"])
    if isinstance(options.get("corruptions"), str):
        options["corruptions"] = _names(options["corruptions"], "corruptions")
    if isinstance(options.get("severities"), (str, int)):
        options["severities"] = _severities(options["severities"])
    opts = build_options(_corruptions.Options, options, "corruptions")
    with progress_bar(progress, "corruptions", _corruptions.progress_steps(opts, s.task)) as bar:
        raw = _corruptions.run(s, opts, progress=bar)
    protect = [p for p in (opts.baseline, *opts.others) if p and p != "none" and isinstance(p, str)]
    return Result(_corruptions, raw, "corruptions", [s], protect=protect)


@with_options(_transfer.Options)
def transfer(sources=None, evals=None, data=None, *, input_range=None, preprocess=None, class_names=None,
             progress: bool = True, notify=None, **options) -> Result:
    """PGD examples and a universal noise made on each source model, measured on each eval model.

    Arguments:
        sources: models (keras.Model objects or paths; None on MNIST: the shipped cnn, cnn_bn, cnn_pgd).
        evals: the models measured (None: the sources).
        notify: a function given a line as each source model is done (None: silent).
        norm, eps, steps, step_fraction, count, target, fit, seed.

    Returns:
        Result with transfer_pgd.png and transfer_universal.png: the transfer matrices.
    """
    from kerascnn.errors import BadValue

    if sources is None:
        from kerascnn import SAVED_MODELS

        if data is not None:
            raise BadValue("sources", "give the models for data other than MNIST")
        sources = [p for p in (SAVED_MODELS / n for n in ("cnn", "cnn_bn", "cnn_pgd")) if (p / "model.keras").is_file()]
    if not isinstance(sources, (list, tuple)):
        sources = [sources]
    domain = dict(input_range=input_range, preprocess=preprocess, class_names=class_names)
    source_subjects = [subject(m, data, **domain) for m in sources]
    eval_subjects = [subject(m, data, **domain) for m in evals] if evals else source_subjects
    opts = build_options(_transfer.Options, options, "transfer")
    raw = _transfer.run(source_subjects, eval_subjects, opts, progress=notify)
    return Result(_transfer, raw, "transfer", list(dict.fromkeys(source_subjects + eval_subjects)))


def _names(text: str, param: str) -> tuple:
    """'a,b' -> ('a', 'b'), lower-cased, repeats dropped; an empty item is refused (kerascnn.lists)."""
    from kerascnn.lists import split_list

    return tuple(dict.fromkeys(v.lower() for v in split_list(text, param)))


def _severities(value) -> tuple:
    """'3,5' (or a number, or a sequence) -> whole numbers, as `--severity` reads them; BadValue("severities")."""
    from kerascnn.errors import BadValue
    from kerascnn.lists import split_list

    try:
        return tuple(dict.fromkeys(int(v) for v in split_list(value, "severities")))
    except (TypeError, ValueError):
        raise BadValue("severities", f"give whole numbers 1-5 separated by commas, got {value!r}") from None
