"""The whole study as one report: report.html (self-contained: figures embedded as base64 PNG, inline
CSS, no scripts, readable offline) and report.md beside the same PNG files.

`build_report(ReportConfig(...), progress)` runs every experiment with the library's own functions
and default settings, draws each figure with `kerascnn.plots`, and returns a `ReportResult`. The report
is built as a list of `Section`s of blocks (`Paragraph`, `Table`, `Image`), rendered twice: by
`render_html` and `render_markdown`. Sections, in order: the network; training of both models
(and, given a `kerascnn compare` folder, the batch-norm study); filters; activation maps; occlusion;
adversarial examples; our numbers beside the reference reports'.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from kerascnn import SAVED_MODELS, UserError, __version__
from kerascnn.document import Image, Paragraph, Row, Section, Table, render_html, render_markdown

#: Side-by-side accuracy curves start no lower than this: the models differ near the top.
ACCURACY_FLOOR = 0.95
#: The reference reports' numbers (see /work/shared/reference): EE6132 (PyTorch, 5 epochs, batch 16)
#: and EE5179 (10 epochs; its batch-norm run at batch 64).
REFERENCE = {
    "accuracy_plain_5": 0.9892,       # EE6132, test accuracy without batch norm, 5 epochs
    "accuracy_bn_5": 0.9905,          # EE6132, with batch norm
    "accuracy_plain_10": 0.9920,      # EE5179, after 10 epochs (the report calls it "Val Accuracy")
    "params": 799_078,                # both
    "conv_params": 9_568,
    "dense_params": 789_510,
    "neurons_ee6132": 2_654,
    "neurons_ee5179": 10_014,
}


@dataclass
class ReportConfig:
    """What the report runs. The defaults are the commands' own defaults; tests shrink the steps."""
    out_dir: str = "report"
    model_dir: str = os.fspath(SAVED_MODELS / "cnn")       # run folder or .keras file, without batch norm
    bn_model_dir: str = os.fspath(SAVED_MODELS / "cnn_bn")  # the same, with batch norm
    data_dir: str | None = None
    retrain: bool = False             # train both afresh into OUT/models/ (the recipe below)
    compare_dir: str | None = None    # a `kerascnn compare` output folder to include
    epochs: int = 5                   # --retrain only: the training recipe
    batch_size: int = 16
    val_size: int = 5000
    subset: int | None = None
    precision: str = "auto"
    activation_digit: int = 7         # activation maps of the first test image of this class
    conv2_filter: int = 23            # the conv2 filter whose 32 slices are drawn (the reference's)
    occlusion_digits: tuple = (7, 9)
    nontargeted_steps: int = 500
    targeted_steps: int = 300
    targeted_guide: int = 7           # the targeted attack's guide: the first test image of this class
    targeted_beta: float = 100.0
    noise_steps: int = 500
    noise_target: int = 4
    noise_count: int = 6              # sources: the first test image of each of the first N classes != target
    universal_digit: int = 1          # whose noise goes on random test images (a noise source; else the first)
    universal_count: int = 100
    seed: int = 0

    def check(self) -> None:
        for name in ("activation_digit", "targeted_guide", "noise_target", "universal_digit"):
            if not 0 <= getattr(self, name) <= 9:
                raise UserError(f"{name} must be a digit 0-9, got {getattr(self, name)}")
        if not 1 <= self.noise_count <= 9:
            raise UserError(f"noise_count must be 1-9, got {self.noise_count}")
        for name in ("nontargeted_steps", "targeted_steps", "noise_steps", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.compare_dir and not (Path(self.compare_dir) / "compare.json").is_file():
            raise UserError(f"--compare {self.compare_dir}: no compare.json there (run `kerascnn compare` first)")
        if not self.retrain:
            for path in (self.model_dir, self.bn_model_dir):
                _model_file(path)


# ---------------------------------------------------------------------------- the result
@dataclass
class ReportResult:
    html: Path
    markdown: Path
    figures: list[Path]
    sections: list[str]           # titles, in order
    seconds: dict                 # per section, and "total"
    numbers: dict                 # ours, as in the comparison with the reference reports


# ---------------------------------------------------------------------------- helpers
def _model_file(path) -> Path:
    """A run folder or a .keras file -> the .keras file (UserError when there is none)."""
    path = Path(path).expanduser()
    file = path / "model.keras" if path.is_dir() else path
    if not file.is_file():
        raise UserError(f"model not found: {file} (train it with `kerascnn train`, or pass --retrain)")
    return file


def _pct(value, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


class _Figures:
    """Saves each figure as OUT/<name> and keeps its bytes for embedding."""

    def __init__(self, out: Path):
        self.out = out
        self.paths: list[Path] = []

    def add(self, fig, name: str, caption: str, max_width: int | None = None) -> Image:
        from kerascnn import store

        path = store.save_figure(fig, self.out / name)
        self.paths.append(path)
        return Image(name, path.read_bytes(), caption, max_width)


@dataclass
class _Model:
    """One model of the report: the network, its run's files, and its test evaluation."""
    name: str
    batchnorm: bool
    model: object
    file: Path
    metrics: dict | None
    steps: list[dict] | None
    test: object = None


def _load_run(name: str, batchnorm: bool, path) -> _Model:
    from kerascnn import store

    file = _model_file(path)
    folder = file.parent
    metrics = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else None
    steps = store.read_csv(folder / "steps.csv") if (folder / "steps.csv").is_file() else None
    return _Model(name, batchnorm, store.load_model(file), file, metrics, steps)


# ---------------------------------------------------------------------------- sections
def network_section() -> tuple[Section, dict]:
    from kerascnn.model import build_model, layer_table

    table = layer_table(build_model(False))
    bn_table = layer_table(build_model(True))
    rows = [[r.name, r.kind, " x ".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.units:,}", f"{r.macs:,}"]
            for r in table.rows]
    rows.append(["total", "", "", f"{table.total_params:,}", f"{table.total_units:,}", f"{table.total_macs:,}"])
    conv, dense = table.params_of("conv"), table.params_of("dense")
    extra = bn_table.total_params - table.total_params
    section = Section("network", "The network", [
        Paragraph("conv1 (32 filters 3x3, same padding, ReLU) -> 2x2 max-pool -> conv2 (32 filters 3x3, ReLU) -> "
                  "2x2 max-pool -> flatten (1,568) -> fc1 (500, ReLU) -> 10 logits. The softmax is applied only "
                  "where a probability is shown."),
        Table(["layer", "kind", "output shape", "parameters", "units", "multiply-adds"], rows,
              "Per layer, for one 28x28 image (units: activations it outputs; multiply-adds: its forward pass)",
              numeric=(3, 4, 5)),
        Paragraph(f"{table.total_params:,} parameters: {conv:,} in the convolutions "
                  f"({' + '.join(f'{r.params:,}' for r in table.rows if r.kind == 'conv')}) and {dense:,} in the "
                  f"dense layers ({dense / table.total_params:.1%}), almost all of them fc1's 1,568 x 500 weights. "
                  f"Batch norm after conv1, conv2 and fc1 adds {extra:,} ({extra // 2:,} trained scales and "
                  f"shifts, {extra // 2:,} moving statistics): {bn_table.total_params:,} in all.", note=True),
    ])
    numbers = {"params": table.total_params, "conv_params": conv, "dense_params": dense,
               "bn_params": bn_table.total_params, "units": table.total_units}
    return section, numbers


def _recipe_row(m: _Model) -> list:
    metrics = m.metrics or {}
    seconds = metrics.get("train_seconds")
    return [m.name, "yes" if m.batchnorm else "no", metrics.get("epochs"), metrics.get("batch_size"),
            metrics.get("lr_schedule"), metrics.get("seed"), metrics.get("precision"),
            None if seconds is None else f"{seconds:.0f} s", _pct(m.test.accuracy), f"{m.test.loss:.4f}"]


def training_section(models: list[_Model], images, labels, figures: _Figures, compare_dir) -> Section:
    from kerascnn import plots

    plain, bn = models
    diff = bn.test.accuracy - plain.test.accuracy
    blocks = [Table(["model", "batch norm", "epochs", "batch", "lr schedule", "seed", "precision", "training time",
                     "test accuracy", "test loss"], [_recipe_row(m) for m in models],
                    f"Both models on the {len(labels):,} test images (evaluated now)", numeric=(2, 3, 5, 7, 8, 9))]
    if not compare_dir:
        blocks.append(Paragraph(
            f"Batch norm: {_pct(bn.test.accuracy)} against {_pct(plain.test.accuracy)} "
            f"({100 * diff:+.2f} points), but from one training run each; the spread between seeds is of the "
            f"same order, so this alone cannot say whether batch norm helped. `kerascnn compare` trains both "
            f"for several seeds and decides (pass its folder with `--compare` to include it here).", note=True))
    with_steps = [m for m in models if m.steps]
    finals = [[r["val_accuracy"] for r in m.steps if r.get("val_accuracy") is not None][-1:] for m in with_steps]
    zoom = all(f and f[0] > ACCURACY_FLOOR + 0.01 for f in finals)  # only where the curves end well above it
    for key, draw, what in (("loss", plots.loss_curves, "cross-entropy loss"),
                            ("accuracy", plots.accuracy_curves, "accuracy")):
        drawn = [(m, draw(m.steps, f"{m.name}: {what}")) for m in with_steps]
        _same_y_range([fig for _, fig in drawn], floor=ACCURACY_FLOOR if key == "accuracy" and zoom else None)
        captions = {"loss": "training loss per iteration (raw and smoothed) and validation loss; dotted: epoch ends",
                    "accuracy": "training accuracy (smoothed) and validation accuracy"
                                + (f"; the axis starts at {ACCURACY_FLOOR:.0%} at most, so the first iterations "
                                   f"may lie below it" if zoom else "")}
        blocks.append(Row([figures.add(fig, f"{m.name}_{key}.png", f"{m.name}: {captions[key]}.") for m, fig in drawn]))
    for m in models:
        if not m.steps:
            blocks.append(Paragraph(f"{m.name}: no steps.csv beside {m.file}, so no training curves."))
    blocks.append(figures.add(plots.prediction_grid(images, labels, plain.test.predictions), "predictions.png",
                              f"{plain.name}: the first 20 test images, then mistakes (red). P: predicted, T: true."))
    blocks.append(figures.add(plots.confusion_figure(plain.test.confusion), "confusion.png",
                              f"{plain.name}: confusion matrix on the test split.", max_width=620))
    if compare_dir:
        blocks += _compare_blocks(Path(compare_dir), figures)
    return Section("training", "Training, with and without batch norm", blocks)


def _same_y_range(figs, floor: float | None = None) -> None:
    """Gives the first axes of every figure the same y range (the union, its bottom raised to `floor`
    at most), so that side by side they compare."""
    if not figs:
        return
    limits = [fig.axes[0].get_ylim() for fig in figs]
    low, high = min(lo for lo, _ in limits), max(hi for _, hi in limits)
    if floor is not None:
        low = max(low, floor)
    for fig in figs:
        fig.axes[0].set_ylim(low, high)


def _compare_blocks(folder: Path, figures: _Figures) -> list:
    """The batch-norm study of a `kerascnn compare` folder: its table, verdict and curves (PNG copied)."""
    d = json.loads((folder / "compare.json").read_text())
    recipe = d.get("recipe", {})
    rows = []
    for v in d["variants"].values():
        iters = v.get("iterations_to_threshold_median")
        rows.append(["with batch norm" if v["batchnorm"] else "without batch norm", len(v["seeds"]),
                     f"{100 * v['test_accuracy_mean']:.2f}%", f"{100 * v['test_accuracy_std']:.2f}",
                     f"{100 * v['test_accuracy_min']:.2f} – {100 * v['test_accuracy_max']:.2f}%",
                     f"{v['epoch_seconds']:.1f} s", "never" if iters is None else f"{iters:,.0f}"])
    header = ["variant", "seeds", "test accuracy (mean)", "std (points)", "min – max", "epoch time",
              f"iterations to {d.get('threshold', 0.98):.0%} val (median)"]
    caption = (f"kerascnn compare: {recipe.get('epochs')} epochs, batch {recipe.get('batch_size')}, "
               f"lr schedule {recipe.get('lr_schedule')}")
    blocks = [Paragraph(f"The batch-norm study from {folder}:"),
              Table(header, rows, caption, numeric=(1, 2, 3, 4, 5, 6)),
              Paragraph(d["verdict"]["sentence"], note=True)]
    from kerascnn import store

    band = "mean over seeds, min-max band."
    for name, caption in (("curves_accuracy.png", f"Accuracy with and without batch norm: {band}"),
                          ("curves_loss.png", f"Loss with and without batch norm: {band}"),
                          ("test_accuracy.png", "Test accuracy of every seed.")):
        if (folder / name).is_file():
            path = store.write_bytes(figures.out / f"compare_{name}", (folder / name).read_bytes())
            figures.paths.append(path)
            blocks.append(Image(path.name, path.read_bytes(), caption, 820 if name == "test_accuracy.png" else None))
    return blocks


def filters_section(model, figures: _Figures, conv2_filter: int) -> Section:
    from kerascnn import inspect, plots

    conv1 = inspect.filter_weights(model, "conv1")
    conv2 = inspect.filter_weights(model, "conv2", conv2_filter)
    return Section("filters", "Filters", [
        Paragraph("The raw kernels, on one colour scale centred on zero per figure (blue negative, red "
                  "positive). conv1's 3x3 kernels act on the pixels; each conv2 filter has one 3x3 slice per "
                  "conv1 map."),
        figures.add(plots.filter_grid(conv1), "filters_conv1.png", "conv1: its 32 kernels (3x3).", max_width=760),
        figures.add(plots.filter_grid(conv2), f"filters_conv2_{conv2_filter}.png",
                    f"conv2 filter {conv2_filter} (the reference report's): its 32 input-channel slices.", max_width=760),
    ])


def activations_section(model, images, labels, digit: int, figures: _Figures) -> Section:
    from kerascnn import data, inspect, plots

    index = data.pick(labels, digit=digit)
    result = inspect.activations(model, images[index], ("conv1", "conv2"))
    title = f"input: test image {index} (a {labels[index]})\npredicted {result.pred} (P = {result.probabilities.max():.4f})"
    return Section("activations", "Activation maps", [
        Paragraph(f"The 32 rectified maps of conv1 (28x28) and conv2 (14x14) for the first test {digit}: conv1's "
                  f"maps still show the digit's strokes and edges; conv2's are coarser combinations of them."),
        figures.add(plots.activation_grid(result, input_title=title), "activations.png",
                    f"Activation maps of test image {index} after conv1 and conv2."),
    ])


def occlusion_section(model, images, labels, digits, figures: _Figures) -> tuple[Section, dict]:
    from kerascnn import data, occlusion, plots

    blocks = [Paragraph("A grey (0.5) 14x14 patch slides over the image with stride 7: 9 positions, row-major "
                        "from the top-left. Where covering a region changes the prediction, the network relied "
                        "on it. The reference report's numbers (a PyTorch CNN, its own first 7 and 9) are beside ours.")]
    numbers = {}
    for digit in digits:
        index = data.pick(labels, digit=digit)
        result = occlusion.occlude(model, images[index], int(labels[index]), patch=14, stride=7, index=index)
        reference = occlusion.reference_table(int(labels[index]), 14, 7)
        grid = figures.add(plots.occlusion_grid(result, reference, title=f"test image {index} (a {digit})"),
                           f"occlusion_{digit}.png", f"Occlusion of the first test {digit} (test image {index}); "
                           f"grey under each copy: the reference report's numbers.")
        rows, marked = [], []
        for p in range(result.count):
            row = [p + 1, f"{int(result.rows[p])}, {int(result.cols[p])}", f"{result.prob_true[p]:.4f}",
                   int(result.pred[p])]
            marked += [(p, 2), (p, 3)] if result.pred[p] != digit else []
            if reference is not None:
                row += [f"{reference.prob_true[p]:.4f}", reference.pred[p]]
                marked += [(p, 4), (p, 5)] if reference.pred[p] != digit else []
            rows.append(row)
        header = ["pos", "row, col", f"P({digit})", "pred"] + (["ref P", "ref pred"] if reference is not None else [])
        blocks.append(Row([grid, Table(header, rows, f"Occluded {digit}: clean P({digit}) = "
                                       f"{result.clean_prob_true:.4f}; red: predicted wrong" +
                                       ("; ref: the reference report" if reference is not None else ""),
                                       numeric=tuple(range(len(header))), marked=tuple(marked))]))
        heat = occlusion.sensitivity_map(model, images[index], int(labels[index]), patch=14, index=index)
        blocks.append(figures.add(plots.occlusion_map(heat, title=f"test image {index} (a {digit})"),
                                  f"occlusion_{digit}_map.png",
                                  f"The same patch at every position (stride 1): where covering hurts the {digit} most.",
                                  max_width=900))
        wrong = [p + 1 for p in range(result.count) if result.pred[p] != digit]
        numbers[digit] = {"wrong_positions": wrong, "preds": [int(k) for k in result.pred],
                          "min_prob": float(result.prob_true.min())}
    return Section("occlusion", "Occlusion", blocks), numbers


def attacks_section(model, images, labels, config: ReportConfig, figures: _Figures,
                    progress: Callable[[str], None]) -> tuple[Section, dict]:
    from kerascnn import attacks, data, plots

    blocks = [Paragraph("Gradient steps on the pixels (the weights fixed), with the `kerascnn attack` defaults; "
                        "pixels stay in [0, 1].")]
    numbers = {}

    progress(f"  nontargeted: 10 classes from Gaussian noise, up to {config.nontargeted_steps} steps")
    result = attacks.nontargeted(model, range(10), steps=config.nontargeted_steps, seed=config.seed)
    ok = int(result.success.sum())
    numbers["nontargeted"] = {"successes": ok, "steps": result.steps_run, "seconds": result.seconds}
    blocks += [Paragraph(f"Nontargeted: from Gaussian noise, one image per class, until the model gives that class "
                         f"probability >= {result.confidence:g}. {ok}/10 got there, in {result.steps_run} steps "
                         f"({result.seconds:.1f} s). The images look like noise, not digits: the network is sure "
                         f"of classes it has never seen anything like."),
               figures.add(plots.attack_images(result), "attack_nontargeted.png",
                           "Nontargeted attack: target, prediction and its probability (green: reached).", max_width=760)]

    guide_index = data.pick(labels, digit=config.targeted_guide)
    progress(f"  targeted: look like test image {guide_index}, predicted 0-9, {config.targeted_steps} steps")
    result = attacks.targeted(model, images[guide_index], range(10), beta=config.targeted_beta,
                              steps=config.targeted_steps, seed=config.seed)
    ok = int(result.success.sum())
    numbers["targeted"] = {"successes": ok, "mean_mse": float(result.mse.mean()), "beta": config.targeted_beta}
    blocks += [Paragraph(f"Targeted: images that stay close to the first test {config.targeted_guide} "
                         f"(beta = {config.targeted_beta:g} weighs the mean squared difference against the "
                         f"cross-entropy) yet are predicted as each class. {ok}/10 succeed at a mean MSE of "
                         f"{result.mse.mean():.4f} ({result.seconds:.1f} s)."),
               figures.add(plots.attack_images(result, ncols=6), "attack_targeted.png",
                           "Targeted attack: the guide, then one image per class with its prediction and MSE.")]

    others = [c for c in range(10) if c != config.noise_target][:config.noise_count]
    if config.universal_digit in others:  # its noise is the one spread over other images: put it first
        others.remove(config.universal_digit)
        others.insert(0, config.universal_digit)
    sources = data.first_of_each_class(labels, others)
    progress(f"  noise: make {len(sources)} test images predicted {config.noise_target}, up to {config.noise_steps} steps")
    result = attacks.noise(model, images[sources], config.noise_target, steps=config.noise_steps, labels=labels[sources])
    ok = int(result.success.sum())
    numbers["noise"] = {"target": config.noise_target, "successes": ok, "count": len(sources),
                        "l2_median": float(np.median(result.l2)), "linf_max": float(result.linf.max())}
    blocks += [Paragraph(f"Adding noise: for the first test image of each of {', '.join(map(str, others))}, noise "
                         f"from zero that makes the model say {config.noise_target} with probability >= "
                         f"{result.confidence:g}. {ok}/{len(sources)} succeed; median L2 {np.median(result.l2):.2f}, "
                         f"no pixel changed by more than {result.linf.max():.2f}."),
               Row([figures.add(plots.noise_rows(result), "attack_noise.png",
                                "Per source: the original, the noisy image, and the noise (blue darker, red lighter)."),
                    Table(["true", "before", "after", f"P({config.noise_target})", "L2", "Linf", "steps"],
                          [[int(labels[s]), int(result.original_predicted[i]), int(result.predicted[i]),
                            f"{result.target_probability[i]:.4f}", f"{result.l2[i]:.2f}", f"{result.linf[i]:.3f}",
                            int(result.steps_used[i])] for i, s in enumerate(sources)],
                          f"Noise towards {config.noise_target}: predictions before and after; red: not fooled",
                          numeric=tuple(range(7)),
                          marked=tuple((int(i), c) for i in np.flatnonzero(~result.success) for c in (2, 3)))])]

    pick, k = others[0], 0
    pool = np.setdiff1d(np.arange(len(labels)), sources[:1])
    chosen = np.random.default_rng(config.seed).choice(pool, size=min(config.universal_count, len(pool)), replace=False)
    progress(f"  universal: the {pick}'s noise on {len(chosen)} random test images")
    spread = attacks.universal(model, result.noise[k], images[chosen], labels[chosen], config.noise_target,
                               indices=chosen)
    turned = spread.fraction_turned
    numbers["universal"] = {"digit": pick, "count": len(chosen), "fraction_target": float(spread.fooled.mean()),
                            "fraction_changed": float(spread.changed.mean()), "fraction_turned": turned}
    blocks += [Paragraph(f"One noise on other images: the noise found for the {pick} added to {len(chosen)} random "
                         f"test images. Of those the model did not already call {config.noise_target}, "
                         f"{'—' if turned is None else f'{turned:.0%}'} now are; "
                         f"{spread.changed.mean():.0%} of all change their prediction (accuracy "
                         f"{(spread.clean_predicted == spread.labels).mean():.0%} -> "
                         f"{(spread.noisy_predicted == spread.labels).mean():.0%}). Noise fitted to one image "
                         f"transfers only partly.", note=True),
               figures.add(plots.universal_pairs(spread), "attack_universal.png",
                           f"Clean images above their copies with the {pick}'s noise; then per true class the "
                           f"fractions predicted {config.noise_target} and changed.")]
    return Section("attacks", "Adversarial examples", blocks), numbers


def reference_section(numbers: dict, models: list[_Model], compare_dir) -> Section:
    plain, bn = models
    epochs = {m.name: (m.metrics or {}).get("epochs") for m in models}
    occ = numbers.get("occlusion", {})
    att = numbers.get("attacks", {})
    verdict = "one run each: cannot tell (see `kerascnn compare`)"
    if compare_dir:
        d = json.loads((Path(compare_dir) / "compare.json").read_text())
        verdict = (f"{d['verdict']['helped']} ({d['verdict']['difference_points']:+.2f} points over "
                   f"{len(d['variants']['cnn']['seeds'])} seeds; accuracy: {d['verdict']['accuracy']})")

    def occ_text(digit):
        o = occ.get(digit)
        if o is None:
            return None
        wrong = ", ".join(f"{p} (-> {o['preds'][p - 1]})" for p in o["wrong_positions"])
        return f"wrong at {wrong}" if wrong else "right at all 9"

    n = numbers["network"]
    rows = [
        ["test accuracy, no batch norm", "98.92% (5 epochs)", "—",
         f"{_pct(plain.test.accuracy)} ({epochs['cnn'] or '?'} epochs)"],
        ["test accuracy, batch norm", "99.05% (5 epochs)", "not given (trained at batch 64)",
         f"{_pct(bn.test.accuracy)} ({epochs['cnn_bn'] or '?'} epochs)"],
        ["accuracy after 10 epochs, no batch norm", "—", "99.20% (its \"Val Accuracy\")",
         "not run here (`kerascnn train --epochs 10`)"],
        ["did batch norm help?", "yes: +0.13 points, trained faster", "no: slightly longer to train",
         f"{100 * (bn.test.accuracy - plain.test.accuracy):+.2f} points here; {verdict}"],
        ["parameters", f"{REFERENCE['params']:,}", f"{REFERENCE['params']:,}",
         f"{n['params']:,} ({n['bn_params']:,} with batch norm)"],
        ["convolution / dense parameters", "9,568 / 789,510", "9,568 / 789,510",
         f"{n['conv_params']:,} / {n['dense_params']:,}"],
        ["\"neurons\"", "2,654 (32x3x3 per conv layer + 1,568 + 500 + 10)", "10,014 (conv kernel weights + 510 dense units)",
         f"{n['units']:,} units (activations per image; counted differently in each)"],
        ["occlusion of a 7 (9 positions)", "wrong at 2 (-> 9)", "not tabulated", occ_text(7)],
        ["occlusion of a 9 (9 positions)", "wrong at 2 (-> 4), 4 (-> 7), 5 (-> 7)", "not tabulated", occ_text(9)],
    ]
    if att:
        nt, tg, no, un = att["nontargeted"], att["targeted"], att["noise"], att["universal"]
        rows += [
            ["nontargeted attack", "not recognisable, except faint curves of 6 and 8",
             "high probability; the images do not resemble digits",
             f"{nt['successes']}/10 reach p >= 0.99 in {nt['steps']} steps; noise-like"],
            ["targeted attack", "beta 1000, looking like a 7 (and a 2): predicted as other classes",
             "resembles the original image; predicted with high probability",
             f"beta {tg['beta']:g}, guide a 7: {tg['successes']}/10 classes, mean MSE {tg['mean_mse']:.4f}"],
            ["adding noise", "targets 7 and 4: all predicted so, very high confidence",
             "target 6: high confidence; a faint 6 in the noise",
             f"target {no['target']}: {no['successes']}/{no['count']} at p >= 0.99, median L2 {no['l2_median']:.2f}"],
            ["one noise on other images", "a 1's noise (-> 4) on a few images: 3 (rows 1, 4, 6) predicted 4", "not done",
             f"the {un['digit']}'s noise on {un['count']}: "
             f"{'—' if un['fraction_turned'] is None else format(un['fraction_turned'], '.0%')} of those not "
             f"already {no['target']} turned {no['target']}, {un['fraction_changed']:.0%} changed"],
        ]
    schedule = (plain.metrics or {}).get("lr_schedule")
    recipe = (" This report's models decay the learning rate along a cosine, kerascnn's default (about +0.35 "
              "points of test accuracy over the reports' constant rate, measured over 3 seeds)."
              if schedule == "cosine" else "")
    return Section("reference", "Beside the reference reports", [
        Paragraph("EE6132 (PyTorch, 5 epochs, batch 16, one run per variant) and EE5179 (10 epochs; batch norm at "
                  "batch 64) against this report's models. Different frameworks, seeds and test images (the "
                  "reports' first 7 and 9 are in the original MNIST order), so these are comparisons, not "
                  "reproductions." + recipe),
        Table(["", "EE6132 report", "EE5179 report", "kerascnn (this report)"], rows),
    ])


# ---------------------------------------------------------------------------- the whole study
def _train_models(config: ReportConfig, progress) -> list[_Model]:
    from kerascnn import data as data_lib, training
    from kerascnn.compare import epoch_lines

    models = []
    data = data_lib.load_mnist(config.data_dir, config.val_size, config.seed, config.subset)
    for name, batchnorm in (("cnn", False), ("cnn_bn", True)):
        out = Path(config.out_dir) / "models" / name
        train_config = training.TrainConfig(batchnorm=batchnorm, epochs=config.epochs, batch_size=config.batch_size,
                                            seed=config.seed, val_size=config.val_size, subset=config.subset,
                                            precision=config.precision, out_dir=os.fspath(out),
                                            data_dir=config.data_dir)
        progress(f"  training {name}: {config.epochs} epoch(s), batch {config.batch_size} -> {out}")
        result = training.train(train_config, data, verbose=0, callbacks=(epoch_lines(progress, config.epochs),),
                                 notify=progress)
        models.append(_Model(name, batchnorm, result.model, out / "model.keras", result.metrics, result.steps))
    return models


def build_report(config: ReportConfig, progress: Callable[[str], None] = lambda line: None) -> ReportResult:
    """Runs the study and writes OUT/report.html, OUT/report.md and the PNG figures they show."""
    import keras

    from kerascnn import data as data_lib, evaluation, store

    config.check()
    out = store.ensure_dir(config.out_dir)
    figures = _Figures(out)
    seconds: dict[str, float] = {}
    numbers: dict = {}
    sections: list[Section] = []
    start = time.perf_counter()
    steps = 7

    def step(number: int, what: str):
        progress(f"[{number}/{steps}] {what}")
        return time.perf_counter()

    t = step(1, "the network: layer table")
    section, numbers["network"] = network_section()
    sections.append(section)
    seconds["network"] = time.perf_counter() - t

    t = step(2, "training: " + ("training both models" if config.retrain else "loading both models and their runs"))
    if config.retrain:
        models = _train_models(config, progress)
    else:
        models = [_load_run("cnn", False, config.model_dir), _load_run("cnn_bn", True, config.bn_model_dir)]
    images, labels = data_lib.load_test(config.data_dir)
    for m in models:
        m.test = evaluation.evaluate(m.model, images, labels)
        progress(f"  {m.name} ({m.file}): test accuracy {m.test.accuracy:.2%} on {len(labels):,} images")
    sections.append(training_section(models, images, labels, figures, config.compare_dir))
    seconds["training"] = time.perf_counter() - t

    model = models[0].model
    keras.utils.set_random_seed(config.seed)
    t = step(3, f"filters: conv1, conv2 filter {config.conv2_filter}")
    sections.append(filters_section(model, figures, config.conv2_filter))
    seconds["filters"] = time.perf_counter() - t

    t = step(4, f"activation maps of the first test {config.activation_digit}")
    sections.append(activations_section(model, images, labels, config.activation_digit, figures))
    seconds["activations"] = time.perf_counter() - t

    t = step(5, f"occlusion of {' and '.join(map(str, config.occlusion_digits))}")
    section, numbers["occlusion"] = occlusion_section(model, images, labels, config.occlusion_digits, figures)
    sections.append(section)
    seconds["occlusion"] = time.perf_counter() - t

    t = step(6, "adversarial examples (the longest part)")
    section, numbers["attacks"] = attacks_section(model, images, labels, config, figures, progress)
    sections.append(section)
    seconds["attacks"] = time.perf_counter() - t

    t = step(7, "beside the reference reports; writing report.html and report.md")
    sections.append(reference_section(numbers, models, config.compare_dir))
    numbers["test_accuracy"] = {m.name: m.test.accuracy for m in models}
    seconds["total"] = time.perf_counter() - start
    import tensorflow as tf

    source = "IDX folder" if config.data_dir and data_lib.is_idx_folder(config.data_dir) else "MNIST"
    meta = [f"kerascnn {__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
            f"generated {time.strftime('%Y-%m-%d %H:%M')} in {seconds['total']:.0f} s",
            "models: " + "; ".join(f"{m.name} = {m.file}" for m in models)
            + f"; inspection and attacks use {models[0].name}",
            f"test images: {len(labels):,} ({source})"]
    title = "kerascnn: an MNIST CNN, studied end to end"
    html_path = store.write_text(out / "report.html", render_html(title, meta, sections))
    md_path = store.write_text(out / "report.md", render_markdown(title, meta, sections))
    return ReportResult(html_path, md_path, list(figures.paths), [s.title for s in sections], seconds, numbers)
