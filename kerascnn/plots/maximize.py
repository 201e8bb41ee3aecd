"""The figures of `kerascnn filters --maximize`: each filter's maximising input, beside its raw kernel
when the kernel reads at most three input channels (a first convolution layer) (plain style); or each
unit's (filter's or class's) inputs in the styles asked for, side by side (lucid, both, classes)."""
from __future__ import annotations

import math
import textwrap

import numpy as np

from kerascnn.plots.common import BAD, DIVERGING, MUTED, new_figure, show_digit, symmetric_limit
from kerascnn.plots.inspection import _side_by_side

__all__ = ["maximize_grid", "maximize_styles"]


def maximize_grid(result):
    """Cells of [raw kernel | maximising input] (first layers), or of the input alone (later layers,
    whose kernels are drawn in their own figure). Kernels on one diverging scale centred on zero;
    inputs as keras-io shows them (standardised around grey, border cut). `result`: maximize.Result."""
    w = np.asarray(result.weights.weights, np.float32)            # (F, C_in, kh, kw)
    shown = result.display()
    count, channels = w.shape[:2]
    with_kernel = channels <= 3
    per = 2 if with_kernel else 1
    ncols = max(1, min(count, 6 if with_kernel else 8))
    nrows = math.ceil(count / ncols)
    cell = 1.3 if count > 1 else 2.6
    width = max(cell * ncols * per + 0.6, 6.0)
    fig = new_figure(width, (cell + 0.2) * nrows + 1.1)
    axes = np.atleast_2d(fig.subplots(nrows, ncols * per, squeeze=False,
                                      gridspec_kw={"width_ratios": [0.6, 1] * ncols if with_kernel else None}))
    limit = symmetric_limit(w)
    kernel_image = None
    for i in range(nrows * ncols):
        row, col = divmod(i, ncols)
        cells = axes[row, col * per:(col + 1) * per]
        if i >= count:
            for ax in cells:
                ax.axis("off")
            continue
        f = result.weights.filters[i]
        dead = bool(result.dead[i])
        label = f"{f}: {result.activation[i]:.2f}" + (" (dead)" if dead else "")
        if result.flat[i]:   # standardised, a uniform field shows as plain grey: say how bright
            label += f"\nuniform {result.inner_mean[i]:.1f}"
        if with_kernel:
            kernel = w[i, 0] if channels == 1 else _side_by_side(w[i])
            kernel_image = cells[0].imshow(kernel, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
            cells[0].set_xticks([])
            cells[0].set_yticks([])
        show_digit(cells[-1], shown[i], label, color=BAD if dead else "black", fontsize=8,
                   frame=BAD if dead else None, frame_style="dashed")
    if kernel_image is not None:
        bar = fig.colorbar(kernel_image, ax=axes.ravel().tolist(), shrink=0.5, pad=0.01, aspect=30)
        bar.set_label("kernel weight", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    o = result.options
    what = (f"{result.weights.layer}: the input that maximises each filter's mean activation ({result.read_from}), "
            f"{o.steps} normalised gradient ascent steps from grey noise (keras-io's recipe), shown standardised "
            f"around grey with the border cut; title: filter: mean activation reached (uniform: a uniform field of that "
            f"brightness, unclipped)"
            + ("; left of each: the raw kernel (blue < 0 < red)" if with_kernel else
               f"; raw kernels ({channels} input channels each): {_kernel_file(result.weights)}"))
    fig.suptitle("\n".join(textwrap.wrap(what, int(width * 72 / (0.55 * 10)))), fontsize=10)
    if result.dead.any():
        fig.text(0.5, 0.0, "dead: the mean activation is still zero after the ascent", ha="center", va="bottom",
                 fontsize=8, color=MUTED)
    return fig



def _kernel_file(weights) -> str:
    return f"filters_{weights.layer}" + (f"_{weights.filters[0]}" if weights.chosen else "") + ".png"


def maximize_styles(result):
    """One cell per unit (a filter or a class) holding its inputs side by side: plain's (keras-io's
    display: standardised around grey, border cut) then lucid's (as they are, in [0, 1]; several with
    diversity). Titles: the unit and each style's objective measured in [0, 1] pixels, and the share of
    the image's energy above half the Nyquist frequency. `result`: maximize.Result."""
    styles = result.options.styles
    runs = [result.runs[s] for s in styles]
    shown = {s: result.display(s) for s in styles}
    # neither grey nor RGB (2 or 4+ channels): the channels' mean, in grey
    shown = {s: v if v.shape[-1] in (1, 3) else v.mean(axis=-1, keepdims=True) for s, v in shown.items()}
    per = sum(r.per_unit for r in runs)
    count = len(result.units)
    ncols = max(1, min(count, max(1, 8 // per) if per > 1 else (5 if count <= 10 else 8)))
    nrows = math.ceil(count / ncols)
    cell = 1.35 if count > 1 or per > 1 else 2.6
    width = max(cell * ncols * per + 0.3 * ncols, 6.0)
    fig = new_figure(width, (cell + 0.45) * nrows + 1.2)
    fig.get_layout_engine().set(wspace=0.08 if per > 1 else 0.03)   # a gap between units, none within one
    grid = fig.add_gridspec(nrows, ncols)
    for i in range(count):
        row, col = divmod(i, ncols)
        axes = grid[row, col].subgridspec(1, per, wspace=0.0).subplots(squeeze=False)[0]
        k = 0
        for run in runs:
            for j in range(run.per_unit):
                n = i * run.per_unit + j
                title = None
                if j == 0:
                    title = (f"{result.labels[i]}: " if k == 0 else "") + \
                        f"{run.style} {run.per(run.measured)[i]:.2f}\nhf {run.per(run.high_frequency)[i]:.2f}"
                show_digit(axes[k], shown[run.style][n], title, fontsize=7)
                k += 1
    what = ("the logit of each class" if result.classes else
            f"{result.weights.layer}: the mean activation of each filter ({result.read_from})")
    how = " | ".join({"plain": f"plain: {r.steps} normalised gradient steps from grey noise (keras-io), shown "
                               f"standardised around grey with the border cut",
                      "lucid": f"lucid: {r.steps} Adam steps on a decorrelated Fourier image, random shift / scale "
                               f"/ rotation at every step" + (f", {r.per_unit} images per unit pushed apart by "
                                                              f"lucid's diversity term" if r.per_unit > 1 else "")
                      }[r.style] for r in runs)
    text = (f"Inputs that maximise {what}. {how}. Titles: unit: style, objective on the final input in [0, 1] "
            f"pixels{' (plain' + chr(39) + 's clipped)' if 'plain' in styles else ''}, hf: share of its spectral "
            f"energy above half the Nyquist frequency"
            + (f"; raw kernels: {_kernel_file(result.weights)}" if result.weights is not None and not result.classes
               else ""))
    fig.suptitle("\n".join(textwrap.wrap(text, int(width * 72 / (0.55 * 10)))), fontsize=10)
    return fig

