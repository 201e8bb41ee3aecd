"""What a robustness curve must satisfy if its attacks did their job (Carlini et al. 2019, "On
evaluating adversarial robustness"; Croce & Hein 2020), each check True when all is well:

    <attack>_never_rises_with_eps           a larger ball can only hold more adversarial images
    <attack>_never_above_fgsm               an iterative attack is at least as strong as one step
    restarts_never_raise_accuracy           restarts only add fooled images
    zero_at_huge_eps                        at linf 1 every image can be turned into any other
    <attack>_within_2_points_of_autoattack  a cheaper attack that reads more than 2 points above the
                                            full AutoAttack flatters the model (issue 22: PGD-40 did,
                                            by 11 points on cnn at 0.1)
    square_adds_at_most_1_point             Square, gradient-free, fooling images the gradient
                                            components could not: the signature of masked gradients
"""
from __future__ import annotations

import numpy as np

#: Points by which a cheaper attack may sit above AutoAttack, and Square below the gradient attacks.
ABOVE_AUTOATTACK, SQUARE_MARGIN = 0.02, 0.01


def flags(result) -> dict:
    """The eps at which a weaker attack sits more than 2 points above AutoAttack (per column), and
    those at which Square lowered the gradient components' accuracy by more than 1 point."""
    o = result.options
    out = {"above_autoattack": {}, "square_beats_gradients": []}
    if o.ensemble == "autoattack" and o.ensemble in result.correct:
        reference = result.accuracy("autoattack")
        for column in result.correct:
            if column in ("fgsm", "autoattack"):
                continue  # FGSM is expected to be weaker: one step
            above = result.accuracy(column) - reference > ABOVE_AUTOATTACK + 1e-9
            out["above_autoattack"][column] = [float(e) for e, a in zip(o.eps, above) if a]
    names = list(result.after)
    if "square" in names and names.index("square") > 0:
        before = result.after[names[names.index("square") - 1]]
        drop = np.asarray(before) - np.asarray(result.after["square"])
        out["square_beats_gradients"] = [float(e) for e, d in zip(o.eps, drop) if d > SQUARE_MARGIN + 1e-9]
    return out


def checks(result) -> dict:
    out = {}
    for attack in result.correct:
        out[f"{attack}_never_rises_with_eps"] = bool(np.all(np.diff(result.accuracy(attack)) <= 0))
    if "fgsm" in result.correct:
        for attack in result.correct:
            if attack != "fgsm":
                out[f"{attack}_never_above_fgsm"] = bool(np.all(result.accuracy(attack) <= result.accuracy("fgsm")))
    if result.per_restart is not None and len(result.per_restart):
        out["restarts_never_raise_accuracy"] = bool(np.all(np.diff(np.asarray(result.per_restart), axis=1) <= 0))
    if result.sanity_accuracy is not None:
        out["zero_at_huge_eps"] = result.sanity_accuracy == 0.0
    marks = flags(result)
    for column, eps in marks["above_autoattack"].items():
        out[f"{column}_within_2_points_of_autoattack"] = not eps
    if "square" in result.after and list(result.after).index("square") > 0:
        out["square_adds_at_most_1_point"] = not marks["square_beats_gradients"]
    return out


def hints(result, failed: list[str]) -> str:
    """What to change for each failed check, robustness's own options first."""
    o = result.options
    out = []
    for key in failed:
        attack = key.split("_")[0]
        if key == "pgd_never_above_fgsm":
            out.append(f"PGD is weaker than one FGSM step somewhere: its {o.pgd_steps} steps of "
                       f"{o.pgd_step_fraction:.3g} eps cannot cross the ball; give --step-fraction about "
                       "2.5 / --steps (Madry et al.) or more --steps.")
        elif key.endswith("_never_above_fgsm"):
            out.append(f"{attack.upper()} is weaker than one FGSM step somewhere: give more --steps; if it persists, the "
                       "gradients are masked.")
        elif key.endswith("_never_rises_with_eps"):
            out.append(f"{attack.upper()}'s accuracy rises with eps: " + ("one step overshoots; read the iterative "
                       "attacks' numbers instead." if attack == "fgsm" else "raise --steps or --restarts; if it "
                       "persists, the gradients are masked."))
        elif key == "restarts_never_raise_accuracy":
            out.append("A restart raised the accuracy: a bug; please report it.")
        elif key == "zero_at_huge_eps":
            out.append(f"{result.sanity_attack.upper()} leaves images correct at a huge eps: the gradients are "
                       "masked (or too few --steps).")
        elif key.endswith("_within_2_points_of_autoattack"):
            out.append(f"{attack.upper()} reads more than 2 points above AutoAttack at some eps (marked *): its numbers "
                       "flatter the model; quote AutoAttack's.")
        elif key == "square_adds_at_most_1_point":
            out.append("Square (gradient-free) fooled images the gradient attacks could not: the gradients look "
                       "masked; quote the ensemble's number and try --version plus.")
    return " ".join(out)
