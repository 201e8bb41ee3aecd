"""Figures of the adversarial examples (the attacks' results).

Images are (H, W, 1) or (H, W, 3), any size; classes are written by name when the result has
`class_names`. Signed noise of an RGB image is drawn as its channel mean on the diverging scale
(see common.signed_map): one colour bar reads the same for greyscale and colour models.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from kerascnn.plots.common import (
    BAD,
    DIVERGING,
    GOOD,
    MUTED,
    WRONG,
    class_label,
    is_rgb,
    new_figure,
    show_digit,
    signed_map,
    symmetric_limit,
)

__all__ = ["attack_images", "noise_rows", "universal_pairs"]

#: How the universal figure tells its pairs apart, in colour and in line style (greyscale print).
KINDS = {"turned": dict(color=BAD, ls="solid", lw=3.0, label="turned: now the target, not before"),
         "already": dict(color="#8250df", ls="dotted", lw=2.5, label="already the target when clean"),
         "changed": dict(color="#bf8700", ls="dashed", lw=2.0, label="changed to another class"),
         "unchanged": dict(color=None, ls="solid", lw=0.0, label="unchanged (no frame)")}


def _color(ok: bool) -> str:
    return GOOD if ok else BAD


def _names(result):
    return getattr(result, "class_names", None)


def attack_images(result, ncols: int = 5):
    """Nontargeted or targeted AttackResult: one image per target, titled with the target, the
    prediction and its probability (green: success; red, a cross and a dashed frame: failure);
    targeted adds the guide first and each image's MSE to it."""
    names = _names(result)
    targeted = result.guide is not None
    n = len(result.targets)
    cells = n + (1 if targeted else 0)
    ncols = max(1, min(ncols, cells))
    nrows = math.ceil(cells / ncols)
    fig = new_figure(1.75 * ncols, 2.05 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    mse = result.mse
    first = 0
    if targeted:
        show_digit(axes[0], result.guide, "guide", frame=MUTED, fontsize=10)
        first = 1
    for i in range(n):
        ok = bool(result.success[i])
        lines = [f"{'' if ok else WRONG + ' '}target {class_label(names, result.targets[i], 12)}",
                 f"pred {class_label(names, result.predicted[i], 10)} ({result.probability[i]:.3f})"]
        if mse is not None:
            lines.append(f"MSE {mse[i]:.4f}")
        image = result.images[i]
        limits = {} if result.settings.get("clip", True) else {"vmin": float(image.min()),
                                                                  "vmax": float(image.max())}
        show_digit(axes[first + i], image, "\n".join(lines), _color(ok), frame=_color(ok), fontsize=9,
                   frame_style="solid" if ok else "dashed", **limits)
    for ax in axes[cells:]:
        ax.axis("off")
    if targeted:
        title = (f"Targeted: look like the guide, predicted as each class (beta={result.settings['beta']:g}, "
                 f"{int(result.success.sum())}/{n} succeed, mean MSE {float(mse.mean()):.4f})")
    else:
        title = (f"Nontargeted: from noise to each class (confidence >= {result.confidence:g}: "
                 f"{int(result.success.sum())}/{n} succeed)")
    if not result.settings.get("clip", True):
        title += "\nnot clipped: each image drawn on its own range"
    fig.suptitle(title, fontsize=11)
    return fig


def noise_rows(result):
    """NoiseResult: one row per source: original with its prediction, noisy image with its prediction
    and probability of the target, and the noise (diverging colours centred on 0, with a colour bar;
    for RGB the mean over the channels of each pixel's change, while L2 and Linf count every channel)."""
    names = _names(result)
    target = class_label(names, result.target, 12)
    n = len(result.originals)
    fig = new_figure(6.9, 2.0 * n + 0.5)
    axes = fig.subplots(n, 3, squeeze=False)
    limit = symmetric_limit(signed_map(result.noise[0])) if n == 1 else max(
        symmetric_limit(signed_map(noise)) for noise in result.noise)
    image = None
    for i in range(n):
        label = "" if result.labels[i] < 0 else f"true {class_label(names, result.labels[i], 10)}, "
        p0 = result.original_probabilities[i]
        show_digit(axes[i, 0], result.originals[i],
                   f"original: {label}\npred {class_label(names, p0.argmax(), 10)} ({p0.max():.2f})", fontsize=9)
        ok = bool(result.success[i])
        show_digit(axes[i, 1], result.images[i],
                   f"{'' if ok else WRONG + ' '}noisy: pred {class_label(names, result.predicted[i], 10)}\n"
                   f"P({target}) = {result.target_probability[i]:.2f}, {result.steps_used[i]} steps",
                   _color(ok), frame=_color(ok), fontsize=9, frame_style="solid" if ok else "dashed")
        image = axes[i, 2].imshow(signed_map(result.noise[i]), cmap=DIVERGING, vmin=-limit, vmax=limit,
                                  interpolation="nearest")
        axes[i, 2].set_xticks([])
        axes[i, 2].set_yticks([])
        axes[i, 2].set_title(f"noise: L2 {result.l2[i]:.2f}, Linf {result.linf[i]:.2f}", fontsize=9, pad=3)
    bar = fig.colorbar(image, ax=axes[:, 2].tolist(), shrink=min(1.0, 0.9 / max(n, 1) + 0.3), pad=0.03)
    mean = " (channel mean)" if is_rgb(result.noise[0]) else ""
    bar.set_label(f"pixel change{mean} (blue darker, red lighter)", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    fig.suptitle(f"Noise that makes the model say {target} "
                 f"({int(result.success.sum())}/{n} reach P >= {result.confidence:g})", fontsize=11)
    return fig


def _kinds(result) -> np.ndarray:
    """(N,) the kind of each pair: already, turned, changed or unchanged (see KINDS)."""
    clean, noisy, target = np.asarray(result.clean_predicted), np.asarray(result.noisy_predicted), result.target
    return np.where(clean == target, "already", np.where(noisy == target, "turned",
                    np.where(noisy != clean, "changed", "unchanged")))


def universal_pairs(result, max_pairs: int = 24, per_row: int = 12):
    """UniversalResult: clean images above their noisy copies, each titled with its prediction; the
    frame of the noisy copy says what the noise did (KINDS: turned into the target, already the
    target, changed to another class, unchanged), in colour and in line style. Then per true class
    the fraction turned among the images not already predicted as the target (the target's own
    class left out, marked "(target)": nearly all of it already is), and the fraction changed."""
    names = _names(result)
    target = class_label(names, result.target, 14)
    kinds = _kinds(result)
    count = min(max_pairs, len(result.labels))
    per_row = max(1, min(per_row, count))
    groups = max(1, math.ceil(count / per_row))
    fig = new_figure(1.0 * per_row + 0.6, 2.25 * groups + 3.6)
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.25 * groups + 0.8, 2.8])
    axes = top.subplots(2 * groups, per_row, squeeze=False)
    for k in range(groups * per_row):
        ax_clean, ax_noisy = axes[2 * (k // per_row), k % per_row], axes[2 * (k // per_row) + 1, k % per_row]
        if k >= count:
            ax_clean.axis("off")
            ax_noisy.axis("off")
            continue
        style = KINDS[kinds[k]]
        show_digit(ax_clean, result.clean[k], class_label(names, result.clean_predicted[k], 10), fontsize=8)
        show_digit(ax_noisy, result.noisy[k], class_label(names, result.noisy_predicted[k], 10),
                   style["color"] or "black", frame=style["color"], frame_style=style["ls"],
                   frame_width=style["lw"], fontsize=8)
        if k % per_row == 0:
            ax_clean.set_ylabel("clean", fontsize=9)
            ax_noisy.set_ylabel("+ noise", fontsize=9)
    turned = result.fraction_turned
    turned = "-" if turned is None else f"{turned:.0%}"
    shown = {kind: int((kinds[:count] == kind).sum()) for kind in KINDS}
    top.suptitle(f"The first source's noise added to {len(result.labels)} random test images (first {count} "
                 f"shown; titles: predictions)\n{turned} of those not already predicted {target} now are; "
                 f"{np.mean(result.changed):.0%} changed prediction", fontsize=10)
    handles = [Line2D([], [], color=s["color"] or "white", ls=s["ls"], lw=max(s["lw"], 1.0),
                      label=f"{s['label']} ({shown[kind]} shown)") for kind, s in KINDS.items()]
    top.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    _per_class_bars(bottom.subplots(), result, names, target, fig.get_figwidth())
    return fig


def _per_class_bars(ax, result, names, target: str, inches: float) -> None:
    """Per true class: the fraction turned (among those not already the target) and changed;
    `inches`: the width of the axes' figure, to tell whether the class names need turning."""
    labels = np.asarray(result.labels)
    clean, noisy = np.asarray(result.clean_predicted), np.asarray(result.noisy_predicted)
    changed = np.asarray(result.changed)
    classes = np.unique(labels)
    where = np.arange(len(classes))
    width = 0.38
    turned, changed_frac, others = [], [], []
    for c in classes:
        rows = labels == c
        candidates = rows & (clean != result.target)
        others.append(int(candidates.sum()))
        own = c == result.target  # its own images turned into it would be corrections, not an attack
        turned.append(float((noisy[candidates] == result.target).mean()) if candidates.any() and not own else 0.0)
        changed_frac.append(float(changed[rows].mean()))
    bars = ax.bar(where - width / 2, turned, width, color=BAD, label=f"turned into {target} "
                  f"(of those not already {target})")
    ax.bar_label(bars, ["(target)" if c == result.target else ("-" if n == 0 else f"{v:.0%}")
                        for c, v, n in zip(classes, turned, others)], fontsize=7, padding=1)
    bars = ax.bar(where + width / 2, changed_frac, width, color=MUTED, label="prediction changed (of all)")
    ax.bar_label(bars, [f"{v:.0%}" for v in changed_frac], fontsize=7, padding=1)
    longest = max(len(class_label(names, c, 12)) for c in classes)
    many = longest * 0.065 > 0.9 * inches / max(len(classes), 1)  # at 8 pt a character is ~0.065 in
    ax.set_xticks(where, [f"{class_label(names, c, 12)}\n(n={int((labels == c).sum())})" for c in classes],
                  fontsize=8, rotation=30 if many else 0, ha="right" if many else "center")
    ax.set_xlabel(f"true class; {target}, the target, is marked: its own images are left out of \"turned\"",
                  fontsize=9)
    ax.set_ylabel("fraction", fontsize=9)
    # the axis follows the bars (room above the tallest for its label), not a fixed 0-1
    ax.set_ylim(0, min(1.12, max(0.05, 1.25 * max([*turned, *changed_frac], default=0.0))))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, ncols=2)
    ax.spines[["top", "right"]].set_visible(False)
