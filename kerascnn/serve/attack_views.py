"""Attacks and other changes of the input, for the page: FGSM at any eps (answered at once), the
prediction along eps (FGSM, one batched call), PGD / APGD-CE / the smallest perturbation / the
certified radius as jobs (kerascnn.serve.jobs), and a corruption at a severity.

Every number is kerascnn's: kc.attacks on the user's model, kerascnn.corrupt, kerascnn.smoothing.
"""
from __future__ import annotations

import numpy as np

from kerascnn.serve.codec import RequestError, choice, class_number, map_png, number, png
from kerascnn.serve.views import image_of, served_of

ATTACKS = ("fgsm", "pgd", "apgd", "minimal")
#: eps values of the curve: 0 to eps_max in this many steps.
CURVE_POINTS = 16


def _setup(server, body: dict):
    """(served, pixels, label, index, goal class, targeted, norm, eps) of an attack request."""
    served = served_of(server, body)
    pixels, label, index = image_of(served, body)
    norm = choice(body, "norm", ("linf", "l2"), "linf")
    eps = number(body, "eps", 0.1, 0, 1 if norm == "linf" else 64)
    target = class_number(body, "target", served.subject.class_names)
    if target is None:  # untargeted: away from the true class, or from the prediction when none is known
        goal = label if label is not None else int(served.probabilities(pixels[None])[0].argmax())
    else:
        goal = target
    return served, pixels, label, index, goal, target is not None, norm, eps


def adversarial(served, pixels: np.ndarray, adv: np.ndarray, label, index, extra: dict) -> dict:
    """The answer for an adversarial image: its prediction, its pixels, and the perturbation amplified."""
    probs = served.probabilities(adv[None])
    delta = adv - pixels
    return {"model": served.name, "index": index, "label": label, "probabilities": [float(p) for p in probs[0]],
            "predicted": int(probs[0].argmax()), "input": png(pixels), "adversarial": png(adv),
            "perturbation": map_png(delta.sum(axis=-1), True), "linf": float(np.abs(delta).max()),
            "l2": float(np.sqrt((delta.astype(np.float64) ** 2).sum())), **extra}


def fgsm(server, body: dict) -> dict:
    import kerascnn as kc

    served, pixels, label, index, goal, targeted, norm, eps = _setup(server, body)
    adv = kc.attacks.fgsm(served.subject.model, pixels[None], np.array([goal]), eps, norm=norm, targeted=targeted,
                          **served.domain_args)[0]
    out = adversarial(served, pixels, adv, label, index, {"attack": "fgsm", "eps": eps, "norm": norm,
                                                            "target": goal if targeted else None})
    if body.get("values"):
        out["values"] = adv.tolist()
    return out


def curve(server, body: dict) -> dict:
    """The prediction along eps: FGSM at CURVE_POINTS radii from 0 to eps_max, in one batched call."""
    import kerascnn as kc

    served, pixels, label, index, goal, targeted, norm, _ = _setup(server, body)
    top = number(body, "eps_max", 0.3, 0.001, 1 if norm == "linf" else 64)
    radii = np.linspace(0, top, CURVE_POINTS)
    batch = np.repeat(pixels[None], CURVE_POINTS, axis=0)
    adv = kc.attacks.fgsm(served.subject.model, batch, np.full(CURVE_POINTS, goal), radii, norm=norm,
                          targeted=targeted, **served.domain_args)
    probs = served.probabilities(adv)
    return {"model": served.name, "index": index, "eps": radii.tolist(), "probabilities": probs.tolist(),
            "predicted": probs.argmax(axis=1).tolist(), "goal": goal, "targeted": targeted}


def start_attack(server, body: dict):
    """PGD, APGD-CE or the smallest perturbation as a job (a list of one step), or ("curve": true)
    the attack along CURVE_POINTS radii, one step per radius."""
    import kerascnn as kc

    attack = choice(body, "attack", ("pgd", "apgd", "minimal"))
    served, pixels, label, index, goal, targeted, norm, eps = _setup(server, body)
    steps = number(body, "steps", 40 if attack == "pgd" else 100, 1, 1000, True)
    model, x, y = served.subject.model, pixels[None], np.array([goal])
    if attack == "apgd" and targeted:
        raise RequestError("target: APGD-CE here is untargeted; use PGD for a target class")

    def run(radius):
        if attack == "pgd":
            return kc.attacks.pgd(model, x, y, radius, norm=norm, steps=steps, targeted=targeted,
                                  **served.domain_args)[0]
        if attack == "apgd":
            return kc.attacks.apgd(model, x, y, radius, norm=norm, loss="ce", steps=steps, **served.domain_args)[0]
        return kc.attacks.minimal(model, x, None if targeted else y, norm=norm, target=goal if targeted else None,
                                  steps=steps, **served.domain_args)[0]

    settings = {"attack": attack, "norm": norm, "steps": steps, "target": goal if targeted else None}
    if body.get("curve"):
        if attack == "minimal":
            raise RequestError("curve: the smallest perturbation has no eps to sweep")
        radii = np.linspace(0, number(body, "eps_max", 0.3, 0.001, 64), CURVE_POINTS)

        def finish_curve(parts):
            probs = served.probabilities(np.stack(parts))
            return {"model": served.name, "index": index, "eps": radii.tolist(), "probabilities": probs.tolist(),
                    "predicted": probs.argmax(axis=1).tolist(), "goal": goal, **settings}

        return server.jobs.start(f"{attack}-curve", [lambda r=r: run(r) for r in radii], finish_curve)
    return server.jobs.start(attack, [lambda: run(eps)], lambda parts: adversarial(
        served, pixels, parts[0], label, index, settings | {"eps": None if attack == "minimal" else eps}))


def corrupt(server, body: dict) -> dict:
    """One corruption of the suite (MNIST-C for MNIST-shaped tasks, else ImageNet-C's) at a severity."""
    from kerascnn import corrupt as corruptions

    served = served_of(server, body)
    pixels, label, index = image_of(served, body)
    suite = "mnist-c" if served.subject.task.mnist_shaped else "common"
    name = choice(body, "corruption", corruptions.NAMES[suite], corruptions.NAMES[suite][0])
    severity = number(body, "severity", 3, 0, 5, True)
    changed = corruptions.corrupt(pixels[None], name, severity, seed=0, suite_name=suite, first_index=index or 0)[0]
    probs = served.probabilities(changed[None])
    return {"model": served.name, "index": index, "label": label, "suite": suite, "corruption": name,
            "severity": severity, "corruptions": list(corruptions.NAMES[suite]), "image": png(changed),
            "input": png(pixels),
            "probabilities": [float(p) for p in probs[0]], "predicted": int(probs[0].argmax())}


def start_certify(server, body: dict):
    """Randomized smoothing (kerascnn.smoothing.cohen) on this image: the smoothed prediction, its
    certified L2 radius, or abstention, at noise sigma, as a job of one step."""
    from kerascnn.smoothing import cohen

    served = served_of(server, body)
    pixels, label, index = image_of(served, body)
    sigma = number(body, "sigma", 0.25, 0.01, 1.0)
    samples = number(body, "n", 1000, 100, 100_000, True)

    def finish(parts):
        found = parts[0]
        predicted = int(found["prediction"][0])
        return {"model": served.name, "index": index, "label": label, "sigma": sigma, "n": samples,
                "abstain": predicted == cohen.ABSTAIN, "predicted": None if predicted == cohen.ABSTAIN else predicted,
                "radius": float(found["radius"][0]), "p_lower": float(found["p_lower"][0]),
                "counts": found["counts"][0].tolist()}

    return server.jobs.start("certify", [lambda: cohen.certify(served.subject.logits_model, pixels[None], sigma,
                                                              n=samples)], finish)
