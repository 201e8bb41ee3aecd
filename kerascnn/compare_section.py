"""The report's blocks for a `kerascnn compare` folder: its table, verdict and curves (PNGs copied)."""
from __future__ import annotations

import json
from pathlib import Path

from kerascnn.document import Image, Paragraph, Table


def compare_blocks(folder: Path, figures) -> list:
    from kerascnn import store

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
