"""Figures of the adversarial examples (kerascnn.attacks results)."""
from __future__ import annotations

import math

import numpy as np

from kerascnn.plots.common import BAD, DIVERGING, GOOD, new_figure, show_digit, symmetric_limit

__all__ = ["attack_images", "noise_rows", "universal_pairs"]


def _color(ok: bool) -> str:
    return GOOD if ok else BAD


def attack_images(result, ncols: int = 5):
    """Nontargeted or targeted AttackResult: one image per target, titled with the target, the
    prediction and its probability (green: success, red: failure); targeted adds the guide first and
    each image's MSE to it."""
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
        show_digit(axes[0], result.guide, "guide", frame="#57606a", fontsize=10)
        first = 1
    for i in range(n):
        ok = bool(result.success[i])
        lines = [f"target {result.targets[i]}",
                 f"pred {result.predicted[i]} ({result.probability[i]:.3f})"]
        if mse is not None:
            lines.append(f"MSE {mse[i]:.4f}")
        image = result.images[i]
        limits = {} if result.settings.get("clip", True) else {"vmin": float(image.min()),
                                                                  "vmax": float(image.max())}
        show_digit(axes[first + i], image, "\n".join(lines), _color(ok), frame=_color(ok), fontsize=9,
                   **limits)
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
    and probability of the target, and the noise (diverging colours centred on 0, with a colour bar)."""
    n = len(result.originals)
    fig = new_figure(6.6, 2.0 * n + 0.5)
    axes = fig.subplots(n, 3, squeeze=False)
    limit = symmetric_limit(result.noise)
    image = None
    for i in range(n):
        label = "" if result.labels[i] < 0 else f"true {result.labels[i]}, "
        p0 = result.original_probabilities[i]
        show_digit(axes[i, 0], result.originals[i], f"original: {label}pred {p0.argmax()} ({p0.max():.2f})",
                   fontsize=9)
        ok = bool(result.success[i])
        show_digit(axes[i, 1], result.images[i],
                   f"noisy: pred {result.predicted[i]} (p{result.target}={result.target_probability[i]:.2f})\n"
                   f"{result.steps_used[i]} steps", _color(ok), frame=_color(ok), fontsize=9)
        image = axes[i, 2].imshow(result.noise[i].squeeze(), cmap=DIVERGING, vmin=-limit, vmax=limit,
                                  interpolation="nearest")
        axes[i, 2].set_xticks([])
        axes[i, 2].set_yticks([])
        axes[i, 2].set_title(f"noise: L2 {result.l2[i]:.2f}, Linf {result.linf[i]:.2f}", fontsize=9, pad=3)
    bar = fig.colorbar(image, ax=axes[:, 2].tolist(), shrink=min(1.0, 0.9 / max(n, 1) + 0.3), pad=0.03)
    bar.set_label("pixel change (blue darker, red lighter)", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    fig.suptitle(f"Noise that makes the model say {result.target} "
                 f"({int(result.success.sum())}/{n} reach p >= {result.confidence:g})", fontsize=11)
    return fig


def universal_pairs(result, max_pairs: int = 24, per_row: int = 12):
    """UniversalResult: clean images above their noisy copies, each titled with its prediction (noisy
    title red when the noise changed it, frame red when it is the target), then per true class the
    fractions predicted as the target and changed."""
    count = min(max_pairs, len(result.labels))
    per_row = max(1, min(per_row, count))
    groups = max(1, math.ceil(count / per_row))
    fig = new_figure(1.0 * per_row + 0.6, 2.25 * groups + 3.2)
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.25 * groups + 0.4, 2.8])
    axes = top.subplots(2 * groups, per_row, squeeze=False)
    for k in range(groups * per_row):
        ax_clean, ax_noisy = axes[2 * (k // per_row), k % per_row], axes[2 * (k // per_row) + 1, k % per_row]
        if k >= count:
            ax_clean.axis("off")
            ax_noisy.axis("off")
            continue
        clean_pred, noisy_pred = result.clean_predicted[k], result.noisy_predicted[k]
        show_digit(ax_clean, result.clean[k], f"{clean_pred}", fontsize=9)
        show_digit(ax_noisy, result.noisy[k], f"{noisy_pred}", BAD if result.changed[k] else "black",
                   frame=BAD if noisy_pred == result.target else None, fontsize=9)
        if k % per_row == 0:
            ax_clean.set_ylabel("clean", fontsize=9)
            ax_noisy.set_ylabel("+ noise", fontsize=9)
    others = result.clean_predicted != result.target
    turned = f"{result.fooled[others].mean():.0%}" if others.any() else "-"
    top.suptitle(f"The first source's noise added to {len(result.labels)} random test images "
                 f"(first {count} shown; titles: predictions)\n{turned} of those not already predicted "
                 f"{result.target} now are; {result.changed.mean():.0%} changed prediction", fontsize=10)
    per_class = result.per_class()
    classes = sorted(per_class)
    ax = bottom.subplots()
    width = 0.38
    where = np.arange(len(classes))
    for offset, key, color, label in ((-width / 2, "fraction_target", BAD, f"predicted {result.target}"),
                                      (width / 2, "fraction_changed", "#57606a", "prediction changed")):
        values = [per_class[c][key] for c in classes]
        bars = ax.bar(where + offset, values, width, color=color, label=label)
        ax.bar_label(bars, [f"{v:.0%}" for v in values], fontsize=7, padding=1)
    ax.set_xticks(where, [f"{c}\n(n={per_class[c]['count']})" for c in classes], fontsize=8)
    ax.set_xlabel("true class", fontsize=9)
    ax.set_ylabel("fraction", fontsize=9)
    ax.set_ylim(0, 1.12)
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, ncols=2)
    ax.spines[["top", "right"]].set_visible(False)
    return fig
