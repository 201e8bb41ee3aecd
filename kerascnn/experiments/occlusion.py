"""Occlusion, the experiment: one image occluded at every position of a patch (the method, with
how positions are laid out and batched: explain.occlusion), its sensitivity map, and the reference
report's numbers beside ours for MNIST's first 7 and 9."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from kerascnn.data.tasks import Pick, pick
from kerascnn.errors import BadValue
from kerascnn.experiments import reference
from kerascnn.experiments.common import class_name
from kerascnn.attributions.patches import OcclusionResult, check_arguments, map_stride_for, occlude
from kerascnn.outputs.document import Table


# ---------------------------------------------------------------------------- the experiment
@dataclass
class Options:
    """Occlusion of one image. Patch and stride default to half and a quarter of the image side
    (14 and 7 on MNIST's 28x28: the reference report's 9 positions)."""
    pick: Pick = field(default_factory=Pick)  # the image: a class, a test index or a picture file
    label: int | None = None    # with a picture file: the class to follow (None: the clean prediction)
    patch: int | None = None    # side of the square patch in pixels (None: half the image side)
    stride: int | None = None   # step between positions in pixels (None: half the patch)
    fill: float = 0.5           # grey value of the patch, in [0, 1]
    map: bool = False           # also the sensitivity map (P(label) at every position, see map_stride)
    map_stride: int | None = None  # the map's stride (None: 1, or more on large images: see map_stride_for)

    def resolved(self, shape: tuple[int, ...]) -> "Options":
        """The options with patch and stride filled in for an image of `shape` (H, W, C), checked."""
        patch = self.patch if self.patch is not None else max(1, min(shape[:2]) // 2)
        stride = self.stride if self.stride is not None else max(1, patch // 2)
        check_arguments(shape[0], shape[1], patch, stride, self.fill)
        map_stride = self.map_stride if self.map_stride is not None else map_stride_for(shape, patch)
        if map_stride < 1:
            raise BadValue("map_stride", f"must be at least 1 pixel, got {map_stride}")
        return replace(self, patch=patch, stride=stride, map_stride=map_stride)


@dataclass
class Result:
    occlusion: OcclusionResult
    heat: OcclusionResult | None       # the stride-1 map, with Options.map
    description: str                   # the image, for titles
    reference: object = None           # reference.OcclusionTable beside ours (MNIST's first 7 or 9)

    def to_dict(self) -> dict:
        out = {"image": self.description} | self.occlusion.to_dict()
        out["class_name"] = class_name(self.occlusion.class_names, self.occlusion.label)
        if self.heat is not None:
            out["map"] = {"patch": self.heat.patch, "stride": self.heat.stride, "rows": int(self.heat.grid_shape[0]),
                          "cols": int(self.heat.grid_shape[1]), "fill": self.heat.fill,
                          "prob_true": self.heat.prob_true_grid().round(6).tolist(),
                          "pred": self.heat.pred.reshape(self.heat.grid_shape).tolist()}
        return out


def run(subject, options: Options, progress=None) -> Result:

    picked = pick(subject.task, options.pick)
    options = options.resolved(picked.image.shape)
    follow, source = picked.label, "true label"
    if picked.label is None:
        follow = None if options.label is None else subject.task.check_class(options.label, "label")
        source = "clean prediction" if follow is None else "given label"
    result = occlude(subject.logits_model, picked.image, follow, patch=options.patch, stride=options.stride,
                     fill=options.fill, index=picked.index)
    result = replace(result, label_source=source if follow is not None else result.label_source,
                     class_names=subject.class_names)
    heat = None
    if options.map:
        heat = occlude(subject.logits_model, picked.image, result.label, patch=options.patch,
                       stride=options.map_stride, fill=options.fill, index=picked.index,
                       progress=None if progress is None else lambda done, total: progress(done, done, total))
        heat = replace(heat, label_source=result.label_source, class_names=subject.class_names)
    table = None
    if subject.task.is_mnist and picked.index is not None and picked.index == _first_of(subject, picked.label):
        table = reference.occlusion_table(picked.label, options.patch, options.stride)
    return Result(result, heat, picked.description, table)


def _first_of(subject, label) -> int | None:
    return None if label is None else subject.task.first_of_class(label)


def figures(result: Result) -> dict:
    from kerascnn import plots

    out = {"occlusion.png": plots.occlusion_grid(result.occlusion, result.reference, title=result.description)}
    if result.heat is not None:
        out["occlusion_map.png"] = plots.occlusion_map(result.heat, title=result.description)
    return out


def table(result: Result):

    r, ref = result.occlusion, result.reference
    k = class_name(r.class_names, r.label)
    header = ["pos", "row", "col", f"P({k})", "pred", "P(pred)"] + (["ref P", "ref pred"] if ref else [])
    rows, marked = [], []
    for p in range(r.count):
        pred = int(r.pred[p])
        row = [p + 1, int(r.rows[p]), int(r.cols[p]), f"{r.prob_true[p]:.4f}", class_name(r.class_names, pred),
               f"{r.prob_pred[p]:.4f}"]
        marked += [(p, 4)] if pred != r.label else []
        if ref:
            row += [f"{ref.prob_true[p]:.4f}", str(ref.pred[p])]
            marked += [(p, 7)] if ref.pred[p] != r.label else []
        rows.append(row)
    caption = (f"{result.description}: following {k} ({r.label_source}); clean image predicted "
               f"{class_name(r.class_names, r.clean_pred)} (P = {r.clean_probabilities.max():.4f}), P({k}) = {r.clean_prob_true:.4f}. "
               f"{r.patch}x{r.patch} patch of grey {r.fill:g}, stride {r.stride}: {r.count} "
               f"position{'s' if r.count != 1 else ''}, row-major (row, col: the patch's top-left pixel); "
               f"marked: predicted class is not {k}" + ("; ref: the EE6132 report's PyTorch CNN on its own "
                                                       "first image of the class" if ref else ""))
    return Table(header, rows, caption, numeric=(0, 1, 2, 3, 5, 6), marked=tuple(marked))


def summary(result: Result) -> str:
    r = result.occlusion
    k = class_name(r.class_names, r.label)
    wrong = [p + 1 for p in range(r.count) if r.pred[p] != r.label]
    text = (f"Covering {result.description} with a {r.patch}x{r.patch} grey patch at {r.count} positions: "
            f"P({k}) falls to {r.prob_true.min():.4f} at worst; "
            + (f"the prediction changes at position(s) {', '.join(map(str, wrong))}." if wrong
               else f"the prediction stays {k} everywhere."))
    missed = r.never_covered()
    if missed:
        text += f" With stride {r.stride}, {missed} pixels are never covered."
    if result.heat is not None:
        low = float((result.heat.prob_true < 0.5).mean())
        text += f" Stride-1 map: {low:.0%} of {result.heat.count} positions give P({k}) < 0.5."
    return text
