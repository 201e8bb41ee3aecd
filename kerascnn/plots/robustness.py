"""Figures of robustness: accuracy against eps, adversarial examples by eps, the histogram of
minimal perturbation norms, universal noise against one image's, and a transfer matrix."""
from __future__ import annotations

import numpy as np

from kerascnn.plots.common import BAD, GOOD, class_label, new_figure, show_digit, signed_map, symmetric_limit

__all__ = ["robustness_curves", "adversarial_examples", "norm_histogram", "universal_comparison", "transfer_matrix"]

_STYLES = ("-", "--", ":", "-.")


def pixel_range_eps(norm: str, pixels: int | None = None) -> float | None:
    """The eps at which the ball around any image holds every image of the pixel range [0, 1]: 1 in
    linf, sqrt(values per image) in L2 (None when `pixels` is unknown). From there an attack can turn
    any image into one of another class, so 0% is the setting's doing, not a finding."""
    if norm == "linf":
        return 1.0
    return float(np.sqrt(pixels)) if pixels else None


def robustness_curves(curves: list[dict], title: str, norm: str, pixels: int | None = None):
    """Accuracy against eps. curves: [{"label", "eps", "accuracy", "clean" (or None), "model"}]; lines
    of one model share a colour, attacks differ by line style; each model's clean accuracy is a
    dotted horizontal line. Where eps reaches the whole pixel range (pixel_range_eps; `pixels`: values
    per image, for L2), that stretch is shaded and labelled: accuracy there is forced to 0."""
    fig = new_figure(6.4, 4.0)
    ax = fig.subplots()
    models = list(dict.fromkeys(c.get("model", "") for c in curves))
    colors = {m: f"C{i}" for i, m in enumerate(models)}
    attacks = list(dict.fromkeys(c["label"] for c in curves))
    cleans = {m: next((c["clean"] for c in curves if c.get("model", "") == m and c.get("clean") is not None), None)
              for m in models}
    named = set()
    for c in curves:
        style = _STYLES[attacks.index(c["label"]) % len(_STYLES)]
        m = c.get("model", "")
        name = f"{m}: {c['label']}" if m else c["label"]
        if len(models) > 1 and m not in named and cleans[m] is not None:
            # several models' clean lines sit close together: their values go in the legend, not beside them
            name = f"{m} (clean {cleans[m]:.1%}): {c['label']}"
        named.add(m)
        ax.plot(c["eps"], c["accuracy"], style, marker="o", ms=4, color=colors[m], label=name)
    for m, clean in cleans.items():
        if clean is not None:
            ax.axhline(clean, color=colors[m], ls=":", lw=1, alpha=0.7)
            if len(models) == 1:
                ax.annotate(f"clean {clean:.1%}", (1.0, clean), xycoords=("axes fraction", "data"), ha="right",
                            va="bottom", fontsize=7, color=colors[m])
    whole = pixel_range_eps(norm, pixels)
    largest = max((max(c["eps"], default=0) for c in curves), default=0)
    if whole is not None and largest >= whole:
        ax.axvline(whole, color="0.35", lw=1.2, ls="-.")
        ax.annotate(f"eps {whole:.3g} = the whole pixel range:\nany image can become any other,\nso 0% from here on is "
                    "forced by eps,\nnot found by the attack", (whole, 0.55), xycoords="data", ha="right",
                    va="center", fontsize=7.5, color="0.25", xytext=(-4, 0), textcoords="offset points",
                    bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "0.6", "alpha": 0.9})
    ax.set_xlabel(f"eps ({'largest pixel change' if norm == 'linf' else 'L2 length of the change'})")
    ax.set_ylabel("accuracy under attack")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title, fontsize=10)
    return fig


def adversarial_examples(originals, rows: list[tuple[str, np.ndarray, np.ndarray]], labels, names=None,
                         title: str = "Adversarial examples"):
    """Rows of images: the originals, then one row per (label, images, predicted); titles are the
    predictions, red with a cross where they are wrong."""
    count = len(originals)
    fig = new_figure(1.05 * count + 0.9, 1.2 * (len(rows) + 1) + 0.3)
    axes = fig.subplots(len(rows) + 1, count, squeeze=False)
    for j in range(count):
        show_digit(axes[0, j], originals[j], class_label(names, labels[j], 10), fontsize=8)
    axes[0, 0].set_ylabel("clean", fontsize=8)
    for i, (label, images, predicted) in enumerate(rows, start=1):
        for j in range(count):
            ok = predicted[j] == labels[j]
            show_digit(axes[i, j], images[j], class_label(names, predicted[j], 10) + ("" if ok else " \u2717"),
                       GOOD if ok else BAD, fontsize=8)
        axes[i, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"{title} (titles: the model's prediction)", fontsize=10)
    return fig


def norm_histogram(distances: dict, norm: str, title: str):
    """Histograms of minimal perturbation norms, one per model (inf: not found, left out), medians marked."""
    fig = new_figure(6.4, 3.6)
    ax = fig.subplots()
    finite = [d[np.isfinite(d)] for d in distances.values()]
    top = max([float(f.max()) for f in finite if f.size] + [1e-3])
    bins = np.linspace(0, top, 31)
    for i, (name, d) in enumerate(distances.items()):
        found = d[np.isfinite(d)]
        ax.hist(found, bins=bins, alpha=0.55, color=f"C{i}", label=f"{name}: median {np.median(d):.3g}")
        ax.axvline(np.median(d), color=f"C{i}", ls="--", lw=1.2)
    ax.set_xlabel(f"smallest {norm} perturbation that changes the prediction")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def universal_comparison(entries: list[tuple[str, np.ndarray, object]], names=None):
    """entries: (label, noise (H, W, C), UniversalResult). The noises, then per entry the fractions
    predicted as the target, turned into it (of those not already) and changed."""
    fig = new_figure(2.0 * len(entries) + 5.2, 3.4)
    grid = fig.add_gridspec(1, len(entries) + 2)
    # one colour scale for every noise, so that the panels compare, and a bar that says what it means
    limit = max(symmetric_limit(noise) for _, noise, _ in entries)
    panels, image = [], None
    for i, (label, noise, _) in enumerate(entries):
        ax = fig.add_subplot(grid[0, i])
        panels.append(ax)
        image = ax.imshow(signed_map(noise), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{label}\nL2 {np.sqrt(np.sum(np.square(noise, dtype=np.float64))):.2f}, "
                     f"Linf {np.max(np.abs(noise)):.3f}", fontsize=8)
    fig.colorbar(image, ax=panels, shrink=0.7, location="bottom", pad=0.04,
                 label="noise (fraction of the pixel range; blue darker, red brighter)")
    ax = fig.add_subplot(grid[0, len(entries):])
    kinds = ("predicted target", "turned", "changed")
    width = 0.8 / len(entries)
    for i, (label, _, result) in enumerate(entries):
        values = [float(result.fooled.mean()), result.fraction_turned or 0.0, float(result.changed.mean())]
        bars = ax.bar(np.arange(3) + (i - (len(entries) - 1) / 2) * width, values, width, color=f"C{i}", label=label)
        ax.bar_label(bars, [f"{v:.0%}" for v in values], fontsize=7)
    target = class_label(names, entries[0][2].target)
    ax.set_xticks(np.arange(3), [k.replace("target", target) for k in kinds], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"On {len(entries[0][2].labels)} held-out test images", fontsize=9)
    return fig


def transfer_matrix(matrix: np.ndarray, sources: list[str], targets: list[str], title: str, fmt: str = "{:.0%}"):
    """A heat map: rows the models the noise was made on, columns the models it was measured on."""
    fig = new_figure(1.3 * len(targets) + 2.2, 0.7 * len(sources) + 1.6)
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Greys", vmin=0, vmax=1.6)
    for i in range(len(sources)):
        for j in range(len(targets)):
            # black on every cell (the scale stops at mid-grey): a muted grey was unreadable on 90% cells
            ax.text(j, i, fmt.format(matrix[i, j]), ha="center", va="center", fontsize=9, color="black",
                    weight="bold" if i == j else "normal")
    ax.set_xticks(range(len(targets)), targets, fontsize=8)
    ax.set_yticks(range(len(sources)), sources, fontsize=8)
    ax.set_xlabel("measured on")
    ax.set_ylabel("made on")
    ax.set_title(title, fontsize=9)
    return fig


def _at_cap(radius, cap: float) -> np.ndarray:
    """(N,) bool: the radii that sit at the cap n puts on them (within rounding)."""
    return np.isclose(np.asarray(radius, float), cap, rtol=1e-6, atol=1e-9) & (np.asarray(radius, float) > 0)


def _cap_line(ax, cap: float, n: int | None, at_cap: int, total: int, top: float) -> None:
    """The largest radius n samples can certify, drawn as a labelled line with the stretch beyond it
    shaded: radii at the line are bounded by the setting (all n noisy samples agreed), not measured
    on the images."""
    samples = "n" if n is None else f"n = {n:,}"
    ax.axvline(cap, color="C1", ls="--", lw=1.2,
               label=f"{samples} caps the radius at {cap:.3g} (all samples agree):\n{at_cap} of {total} images "
                     "sit at the cap, a limit of the setting")
    ax.axvspan(cap, max(top, cap), color="C1", alpha=0.12, lw=0,
               label=f"beyond the cap: no radius is certifiable\nwith {samples} (a larger n raises the cap)")


def certified_curve(radius, correct, abstained: float, title: str, cap: float | None = None, n: int | None = None):
    """Certified accuracy against L2 radius: the fraction of images right with a radius >= r, a step
    down at each image's radius; the abstention rate in the legend. `cap`: the largest radius the
    setting can certify (n samples all agreeing), drawn as a labelled line with the number of images
    at it, so that a drop there reads as the setting's limit, not the model's."""
    fig = new_figure(6.4, 4.0)
    ax = fig.subplots()
    radius = np.asarray(radius, float)
    right = np.sort(radius[np.asarray(correct, bool)])
    top = max(float(radius.max(initial=0)) * 1.1, 0.5, 0.0 if cap is None else cap * 1.25)
    grid = np.linspace(0, top, 400)
    curve = [(right >= r).sum() / len(radius) for r in grid]
    ax.plot(grid, curve, color="C0", label=f"certified (abstained {abstained:.1%})")
    if cap is not None:
        _cap_line(ax, cap, n, int(_at_cap(radius, cap).sum()), len(radius), top)
    ax.set_xlabel("L2 radius (pixels in [0, 1])")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(0, top)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title, fontsize=10)
    return fig


def radius_against_minimal(radius, minimal, correct, title: str, cap: float | None = None, n: int | None = None):
    """Each image's certified radius (x) against the smallest L2 change fooling the base model (y);
    the diagonal marks where the two are equal; `cap` (the largest radius n samples can certify) a
    labelled vertical line."""
    fig = new_figure(5.2, 4.4)
    ax = fig.subplots()
    radius, minimal, correct = (np.asarray(a) for a in (radius, minimal, correct))
    found = np.isfinite(minimal)
    top = max(float(np.max(radius, initial=0)), float(np.max(minimal[found], initial=0)), 0.1,
              0.0 if cap is None else cap) * 1.1
    ax.scatter(radius[correct & found], minimal[correct & found], s=14, color="C0", label="certified right")
    ax.scatter(radius[~correct & found], minimal[~correct & found], s=14, color="C3", marker="x",
               label="wrong or abstained")
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--")
    if cap is not None:
        _cap_line(ax, cap, n, int(_at_cap(radius, cap).sum()), len(radius), top)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("certified L2 radius of the smoothed model")
    ax.set_ylabel("smallest L2 change fooling the base model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7 if cap is not None else 8, loc="upper left" if cap is None else "best")
    ax.set_title(title, fontsize=9)
    return fig
