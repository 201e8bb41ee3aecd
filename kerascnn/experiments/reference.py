"""The numbers of the two assignment write-ups the project grew from (../shared/reference), defined
once: EE6132 (PyTorch, 5 epochs, batch 16, one run per variant) and EE5179 (10 epochs; its batch-norm
run at batch 64). They are for comparison on MNIST only: other models, seeds and image orders.
"""
from __future__ import annotations

from dataclasses import dataclass

from kerascnn.model.network import build_model, layer_table
from kerascnn.outputs.document import Paragraph, Section, Table

NUMBERS = {
    "accuracy_plain_5": 0.9892,       # EE6132, test accuracy without batch norm, 5 epochs
    "accuracy_bn_5": 0.9905,          # EE6132, with batch norm
    "accuracy_plain_10": 0.9920,      # EE5179, after 10 epochs (the report calls it "Val Accuracy")
    "params": 799_078,                # both
    "conv_params": 9_568,
    "dense_params": 789_510,
    "neurons_ee6132": 2_654,
    "neurons_ee5179": 10_014,
}


@dataclass(frozen=True)
class OcclusionTable:
    """EE6132's occlusion table for one digit (a 14 patch, stride 7, 9 positions, row-major).

    Its model was a PyTorch CNN and its test image the first of that class in the original MNIST
    order, so the numbers are for comparison, not to be reproduced.
    """
    label: int
    prob_true: tuple[float, ...]
    pred: tuple[int, ...]
    patch: int = 14
    stride: int = 7


OCCLUSION_TABLES: dict[int, OcclusionTable] = {
    7: OcclusionTable(7, (0.9999, 0.1734, 0.9956, 0.9859, 0.8804, 0.9999, 0.9982, 0.9853, 0.9847),
                      (7, 9, 7, 7, 7, 7, 7, 7, 7)),
    9: OcclusionTable(9, (0.9975, 0.0097, 0.7969, 0.4620, 0.0209, 0.9913, 0.9888, 0.4722, 1.0000),
                      (9, 4, 9, 7, 7, 9, 9, 9, 9)),
}


def occlusion_table(label: int | None, patch: int, stride: int) -> OcclusionTable | None:
    """The table comparable with an occlusion of a `label` (an MNIST digit) with this patch and
    stride, or None (the report has the 7 and the 9, with patch 14 and stride 7)."""
    table = OCCLUSION_TABLES.get(label) if label is not None else None
    if table is None or (table.patch, table.stride) != (patch, stride):
        return None
    return table


# ---------------------------------------------------------------------------- report sections
def network_section(subject, task):
    """The report's first section: the layer table of the studied model (and, on MNIST, the batch-norm
    variant's extra parameters)."""

    table = layer_table(subject.model)
    rows = [[r.name, r.kind, " x ".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.units:,}", f"{r.macs:,}"]
            for r in table.rows]
    rows.append(["total", "", "", f"{table.total_params:,}", f"{table.total_units:,}", f"{table.total_macs:,}"])
    conv, dense = table.params_of("conv"), table.params_of("dense")
    text = (f"{subject.name}: {task.input_shape} images to {subject.num_classes} classes"
            f"{' (a final softmax, read through to its logits)' if subject.ends_in_softmax else ''}. "
            f"{table.total_params:,} parameters: {conv:,} in convolutions and {dense:,} in dense layers.")
    blocks = [Paragraph(text),
              Table(["layer", "kind", "output shape", "parameters", "units", "multiply-adds"], rows,
                    "Per layer, for one image (units: activations it outputs; multiply-adds: its forward pass)",
                    numeric=(3, 4, 5))]
    if task.is_mnist:
        bn = layer_table(build_model(True)).total_params
        plain = layer_table(build_model(False)).total_params
        blocks.append(Paragraph(f"The assignment's network has {plain:,} parameters; batch norm after conv1, conv2 "
                                f"and fc1 adds {bn - plain:,} ({(bn - plain) // 2:,} trained scales and shifts, "
                                f"{(bn - plain) // 2:,} moving statistics): {bn:,} in all.", note=True))
    return Section("network", "The network", blocks)


def reference_section(models, numbers: dict, compare_dir):
    """Our MNIST numbers beside the two reports' (models: the report's, the first without batch norm)."""
    import json
    from pathlib import Path


    def pct(value):
        return "—" if value is None else f"{100 * value:.2f}%"

    plain = models[0]
    bn = models[1] if len(models) > 1 else None
    verdict = "one run each: cannot tell (see `kerascnn compare`)"
    if compare_dir:
        d = json.loads((Path(compare_dir) / "result.json").read_text())
        verdict = (f"{d['verdict']['helped']} ({d['verdict']['difference_points']:+.2f} points over "
                   f"{len(d['variants']['cnn']['seeds'])} seeds; accuracy: {d['verdict']['accuracy']})")

    def occ_text(key):
        o = numbers.get(key)
        if o is None:
            return "—"
        wrong = ", ".join(f"{i + 1} (-> {p['pred']})" for i, p in enumerate(o["positions"]) if p["pred"] != o["label"])
        return f"wrong at {wrong}" if wrong else f"right at all {len(o['positions'])}"

    epochs = lambda m: (m.metrics or {}).get("epochs") or "?"  # noqa: E731
    rows = [["test accuracy, no batch norm", "98.92% (5 epochs)", "—", f"{pct(plain.test.accuracy)} ({epochs(plain)} epochs)"],
            ["test accuracy, batch norm", "99.05% (5 epochs)", "not given (trained at batch 64)",
             "—" if bn is None else f"{pct(bn.test.accuracy)} ({epochs(bn)} epochs)"],
            ["accuracy after 10 epochs, no batch norm", "—", "99.20% (its \"Val Accuracy\")",
             "not run here (`kerascnn train --epochs 10`)"],
            ["did batch norm help?", "yes: +0.13 points, trained faster", "no: slightly longer to train",
             ("—" if bn is None else f"{100 * (bn.test.accuracy - plain.test.accuracy):+.2f} points here; ") + verdict],
            ["parameters", f"{NUMBERS['params']:,}", f"{NUMBERS['params']:,}",
             f"{plain.subject.model.count_params():,}"],
            ["convolution / dense parameters", "9,568 / 789,510", "9,568 / 789,510", "see The network"],
            ["occlusion of a 7 (9 positions)", "wrong at 2 (-> 9)", "not tabulated", occ_text("occlusion_7")],
            ["occlusion of a 9 (9 positions)", "wrong at 2 (-> 4), 4 (-> 7), 5 (-> 7)", "not tabulated",
             occ_text("occlusion_9")]]
    nt, tg, no = numbers.get("nontargeted"), numbers.get("targeted"), numbers.get("noise")
    if nt and tg and no:
        un = no.get("universal")
        rows += [["nontargeted attack", "not recognisable, except faint curves of 6 and 8",
                  "high probability; the images do not resemble digits",
                  f"{nt['successes']}/{nt['count']} reach p >= 0.99 in {nt['steps_run']} steps; noise-like"],
                 ["targeted attack", "beta 1000, looking like a 7 (and a 2): predicted as other classes",
                  "resembles the original image; predicted with high probability",
                  f"beta {tg['settings']['beta']:g}, guide a 7: {tg['successes']}/{tg['count']} classes, "
                  f"mean MSE {tg['mean_mse']:.4f}"],
                 ["adding noise", "targets 7 and 4: all predicted so, very high confidence",
                  "target 6: high confidence; a faint 6 in the noise",
                  f"target {no['target']}: {no['successes']}/{no['count']} at p >= 0.99"],
                 ["one noise on other images", "a 1's noise (-> 4) on a few images: 3 (rows 1, 4, 6) predicted 4",
                  "not done", "—" if not un else
                  f"the first source's noise on {un['count']}: "
                  f"{'—' if un['fraction_turned'] is None else format(un['fraction_turned'], '.0%')} of those not "
                  f"already {no['target']} turned {no['target']}, {un['fraction_changed']:.0%} changed"]]
    return Section("reference", "Beside the reference reports", [
        Paragraph("EE6132 (PyTorch, 5 epochs, batch 16, one run per variant) and EE5179 (10 epochs; batch norm at "
                  "batch 64) against this report's models. Different frameworks, seeds and test images (the "
                  "reports' first 7 and 9 are in the original MNIST order), so these are comparisons, not "
                  "reproductions."),
        Table(["", "EE6132 report", "EE5179 report", "kerascnn (this report)"], rows),
    ])
