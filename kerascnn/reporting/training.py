"""The report's training section: the models' recipes and test accuracy, their curves from their run
folders, and a `kerascnn compare` folder's table, verdict and curves (PNGs copied)."""
from __future__ import annotations

import json
from pathlib import Path

from kerascnn.outputs import store
from kerascnn.outputs.document import Image, Paragraph, Row, Section, Table

#: Side-by-side accuracy curves start no lower than this: the models differ near the top.
ACCURACY_FLOOR = 0.95


def compare_blocks(folder: Path, figures) -> list:

    d = json.loads((folder / "result.json").read_text())
    recipe = d.get("recipe", {}).get("train", {})
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
    blocks = [Paragraph(f"The batch-norm study from {folder}:"), Table(header, rows, caption, numeric=(1, 2, 3, 4, 5, 6)),
              Paragraph(d["verdict"]["sentence"], note=True)]
    band = "mean over seeds, min-max band."
    for name, caption in (("curves_accuracy.png", f"Accuracy with and without batch norm: {band}"),
                          ("curves_loss.png", f"Loss with and without batch norm: {band}"),
                          ("test_accuracy.png", "Test accuracy of every seed.")):
        if (folder / name).is_file():
            path = store.write_bytes(figures.out / f"compare_{name}", (folder / name).read_bytes())
            figures.paths.append(path)
            blocks.append(Image(path.name, path.read_bytes(), caption, 820 if name == "test_accuracy.png" else None))
    return blocks


def training_section(models: list, figures, compare_dir) -> Section:
    """models: report.Model (name, subject, metrics, steps, test); figures: report.Figures."""
    from kerascnn import plots
    from kerascnn.plots.common import close_figures

    def recipe(m) -> list:
        metrics = m.metrics or {}
        seconds = metrics.get("train_seconds")
        return [m.name, "yes" if metrics.get("batchnorm") else ("no" if m.metrics else "—"), metrics.get("epochs"),
                metrics.get("batch_size"), metrics.get("lr_schedule"), metrics.get("seed"),
                None if seconds is None else f"{seconds:.0f} s", f"{100 * m.test.accuracy:.2f}%", f"{m.test.loss:.4f}"]

    blocks = [Table(["model", "batch norm", "epochs", "batch", "lr schedule", "seed", "training time", "test accuracy",
                     "test loss"], [recipe(m) for m in models], f"On the {models[0].test.count:,} test images (evaluated now)",
                    numeric=(2, 3, 5, 6, 7, 8))]
    if len(models) == 2 and not compare_dir:
        a, b = models
        blocks.append(Paragraph(f"{b.name} against {a.name}: {100 * (b.test.accuracy - a.test.accuracy):+.2f} points, "
                                f"from one training run each; the spread between seeds is of the same order, so this "
                                f"alone cannot say which recipe is better (`kerascnn compare` decides over seeds).",
                                note=True))
    with_steps = [m for m in models if m.steps]
    for key, draw, what in (("loss", plots.loss_curves, "cross-entropy loss"), ("accuracy", plots.accuracy_curves, "accuracy")):
        drawn = [(m, draw(m.steps, f"{m.name}: {what}")) for m in with_steps]
        try:
            _same_y_range([fig for _, fig in drawn], floor=ACCURACY_FLOOR if key == "accuracy" else None)
            if drawn:
                blocks.append(Row([figures.add(fig, f"{m.name}_{key}.png", f"{m.name}: {what} per iteration; dotted: "
                                                                           f"epoch ends.") for m, fig in drawn]))
        finally:
            close_figures(fig for _, fig in drawn)
    for m in models:
        if not m.steps:
            blocks.append(Paragraph(f"{m.name}: no steps.csv beside {m.subject.path}, so no training curves."))
    if compare_dir:
        blocks += compare_blocks(Path(compare_dir), figures)
    return Section("training", "Training", blocks)


def _same_y_range(figs, floor: float | None = None) -> None:
    """The same y range on the first axes of every figure (the union, its bottom raised to `floor`
    at most while every curve ends above it), so that side by side they compare."""
    if not figs:
        return
    limits = [fig.axes[0].get_ylim() for fig in figs]
    low, high = min(lo for lo, _ in limits), max(hi for _, hi in limits)
    if floor is not None and all(hi > floor + 0.01 for _, hi in limits):
        low = max(low, floor)
    for fig in figs:
        fig.axes[0].set_ylim(low, high)
