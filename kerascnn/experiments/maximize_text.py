"""The table and the one-line summary of kerascnn.experiments.maximize (a Result of it): for one
style the objective at the start and found, in [0, 1] pixels and the high-frequency share; for lucid
or both each style's measured objective and high-frequency share side by side, with lucid / plain."""
from __future__ import annotations

from kerascnn.outputs.document import Table


def table(result):
    what = "logit" if result.classes else "activation"
    unit = "class" if result.classes else "filter"
    if result.options.style == "plain":
        run = result.main
        rows, marked = [], []
        for i, label in enumerate(result.labels):
            dead = bool(result.dead[i])
            rows.append([label, f"{run.start[i]:.4f}", f"{run.activation[i]:.4f}", f"{run.measured[i]:.4f}",
                         f"{run.high_frequency[i]:.3f}",
                         f"uniform {result.inner_mean[i]:.2f}" if result.flat[i] else "pattern"])
            marked += [(i, 2)] if dead else []
        return Table([unit, f"{what} at start", f"{what} found", f"{what} in [0, 1]", "high-frequency share",
                      "input found"], rows,
                     f"{result.read_from}: " + ("the logit" if result.classes else "mean activation over the inner "
                                                "positions") + f", on grey noise and after {run.steps} gradient "
                     f"ascent steps (marked: still zero, a dead filter); in [0, 1]: the same on the input clipped "
                     f"to [0, 1]; high-frequency share: of the clipped input's spectral energy, above half the "
                     f"Nyquist frequency; uniform: the input is one brightness (given, unclipped) inside the border",
                     numeric=(0, 1, 2, 3, 4), marked=tuple(marked))
    rows = []
    runs = [result.runs[s] for s in result.options.styles]
    for i, label in enumerate(result.labels):
        row = [label]
        for run in runs:
            row.append(f"{run.per(run.measured)[i]:.4f}")
        for run in runs:
            row.append(f"{run.per(run.high_frequency)[i]:.3f}")
        if result.classes:
            row += [f"{_taken(result, run)[i]}/{run.per_unit}" for run in runs]
        if len(runs) == 2:
            plain, lucid = runs[0].per(runs[0].measured)[i], runs[1].per(runs[1].measured)[i]
            row.append(f"{lucid / plain:.2f}" if plain > 0 else "-")
        rows.append(row)
    names = [r.style for r in runs]
    header = [unit] + [f"{n} {what}" for n in names] + [f"{n} high-frequency share" for n in names]
    header += [f"{n}: taken for it" for n in names] if result.classes else []
    if len(runs) == 2:
        plain, lucid = runs[0].measured.mean(), runs[1].measured.mean()
        rows.append(["mean"] + [f"{r.measured.mean():.4f}" for r in runs]
                    + [f"{r.high_frequency.mean():.3f}" for r in runs]
                    + ([f"{_taken(result, r).sum()}/{len(r.images)}" for r in runs] if result.classes else [])
                    + [f"{lucid / plain:.2f}" if plain > 0 else "-"])
        header.append("lucid / plain")
    steps = ", ".join(f"{r.style} {r.steps} steps" for r in runs)
    many = f" (mean over each unit's {runs[-1].per_unit} images)" if runs[-1].per_unit > 1 else ""
    clipped = " (plain's clipped to [0, 1])" if "plain" in names else ""
    return Table(header, rows,
                 f"{result.read_from}: " + ("the logit" if result.classes else "mean activation over the inner "
                                            "positions") + f" of the final input{many}, measured on it as the model "
                 f"takes it: in [0, 1] pixels{clipped}, with no random transformation ({steps}); "
                 f"high-frequency share: of the input's spectral energy (|FFT|^2, mean taken off), the part above "
                 f"half the Nyquist frequency (0.25 cycles / pixel)"
                 + ("; taken for it: the images the model classifies as that class" if result.classes else ""),
                 numeric=tuple(range(len(header))))


def summary(result) -> str:
    o = result.options
    units = (f"the logits of {len(result.units)} class(es)" if result.classes else
             f"{len(result.units)} filter(s)' mean activation ({result.read_from})")
    if o.style != "plain":
        runs = [result.runs[s] for s in o.styles]
        text = f"{result.weights.layer + ': ' if result.weights else ''}inputs that maximise {units}, " + " and ".join(
            f"{r.style} ({r.steps} steps): {r.measured.mean():.3f} in [0, 1] pixels, high-frequency share "
            f"{r.high_frequency.mean():.2f}" for r in runs)
        if len(runs) == 2 and runs[0].measured.mean() > 0:
            text += f"; lucid reaches {runs[1].measured.mean() / runs[0].measured.mean():.0%} of plain's activation"
        if result.classes:
            text += "; the model takes " + " and ".join(f"{_taken(result, r).sum()} of {len(r.images)} {r.style} "
                                                        f"images for their class" for r in runs)
        return text + "."
    dead, flat = int(result.dead.sum()), int(result.flat.sum())
    text = (f"{result.weights.layer + ': ' if result.weights else ''}inputs that maximise {units}, by "
            f"{result.main.steps} normalised gradient ascent steps from grey noise: the "
            f"{'logit' if result.classes else 'mean activation'} rose from {result.start.mean():.3f} to "
            f"{result.activation.mean():.3f}")
    if dead:
        text += f"; {dead} filter(s) are still silent after it (dead)"
    if flat:
        text += f"; {flat} answer to a uniform field (brightness detectors) rather than a pattern"
    return text + "."


def _taken(result, run):
    """(units,) how many of each class's images (of a Run) the model classifies as that class."""
    import numpy as np

    hits = np.asarray(run.predicted).reshape(-1, run.per_unit) == np.asarray(result.units)[:, None]
    return hits.sum(axis=1)

