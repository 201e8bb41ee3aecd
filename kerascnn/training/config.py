"""TrainConfig, the recipe's one home (nanoGPT's GPTConfig), its defaults and checks, and where a
run goes by default. Importing it costs nothing: the CLI reads its defaults while it parses."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from kerascnn import RUNS
from kerascnn.data.tasks import Task
from kerascnn.errors import BadValue
from kerascnn.training import devices as device_plan
from kerascnn.training.adversarial import AdversarialRecipe
from kerascnn.training.precision import PRECISIONS, resolve_precision
from kerascnn.training.recipes import RECIPES

LR_SCHEDULES = ("cosine", "constant", "warmup_cosine")




@dataclass
class TrainConfig:
    """One training run. The defaults are the assignment's recipe, made fast: the one home of it
    (`kerascnn train` and `compare` read their option defaults from here)."""
    dataset: str = "mnist"           # a tensorflow-datasets name (see kerascnn.data.tasks)
    data_dir: str | None = None      # tfds, IDX or image folder; None: TFDS_DATA_DIR / tfds default
    batchnorm: bool = False          # BatchNormalization after conv1, conv2 and fc1
    epochs: int = 5                  # passes over the training images
    batch_size: int = 16             # images per step
    lr: float = 1e-3                 # Adam's learning rate (the peak, with a schedule)
    lr_schedule: str = "cosine"      # "cosine": decays to 0 over the run; "constant": lr throughout;
                                     # "warmup_cosine": rises linearly from 0 to lr, then a cosine to 0
    warmup: float = 0.1              # with "warmup_cosine": the fraction of the run's steps spent rising
    label_smoothing: float = 0.0     # cross-entropy against (1 - s) * one-hot + s / classes
    noise_sd: float = 0.0            # Gaussian data augmentation: each training pixel + N(0, noise_sd^2), unclipped
                                     # (Cohen et al.: what `kerascnn certify` at sigma = noise_sd needs); 0: none
    seed: int = 0                    # weights, validation hold-out and shuffling all follow it
    val_size: int | None = None      # training images held out for validation (None: 10%, at most 5,000)
    out_dir: str | None = None       # None: runs/cnn (runs/<dataset>_cnn for other datasets; _bn with batch norm)
    tensorboard: bool = False        # also write TensorBoard logs under out_dir/tensorboard
    precision: str = "auto"          # "bf16" (mixed_bfloat16), "fp32", or "auto": bf16 where the hardware has it
    steps_per_execution: int = 64    # steps per call into TensorFlow (callbacks see every 64th step)
    val_every: int = 512             # iterations between validation points in steps.csv (0: epoch ends only);
                                     # a point lands at the end of the first 64-step chunk past each multiple
    subset: int | None = None        # use only the first N training images (quick trials, tests)
    optimizer: str = "fused_adam"    # "adam": Keras' own Adam (same arithmetic, slower); for A/B timing
    jit_compile: bool = False        # XLA for the train step (slower on the CPUs measured; see benchmarks)
    fused_batchnorm: bool = True     # batch norm through TF's fused kernels (kerascnn.model.batchnorm); False: Keras'
                                     # own layer (same arithmetic, slower); for A/B timing
    adversarial: AdversarialRecipe | None = None  # train on attacked images (kerascnn.training.adversarial); None: clean
    devices: int | str = 1           # replicas of MirroredStrategy: N GPUs (or N logical CPUs), "all" GPUs;
                                     # batch_size is the global batch, split across them (kerascnn.training.devices)

    def check(self) -> None:
        """Raises BadValue for values no run can use (before any work starts)."""
        for name, low in (("epochs", 1), ("batch_size", 1), ("steps_per_execution", 1), ("val_every", 0)):
            if getattr(self, name) < low:
                raise BadValue(name, f"must be at least {low}, got {getattr(self, name)}")
        if self.val_size is not None and self.val_size < 1:
            raise BadValue("val_size", f"must be at least 1, got {self.val_size}")
        if self.subset is not None and self.subset < 2:
            raise BadValue("subset", f"must be at least 2, got {self.subset}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise BadValue("lr", f"must be a positive number, got {self.lr}")
        if not (math.isfinite(self.noise_sd) and self.noise_sd >= 0):
            raise BadValue("noise_sd", f"must be a number >= 0, got {self.noise_sd}")
        for name in ("warmup", "label_smoothing"):
            if not 0 <= getattr(self, name) < 1:
                raise BadValue(name, f"must be in [0, 1), got {getattr(self, name)}")
        for name, allowed in (("precision", PRECISIONS), ("lr_schedule", LR_SCHEDULES),
                              ("optimizer", ("fused_adam", "adam"))):
            if getattr(self, name) not in allowed:
                raise BadValue(name, f"must be one of {', '.join(allowed)}, got {getattr(self, name)}")
        if self.adversarial is not None:
            self.adversarial.check()
        device_plan.check(self.devices)

    @classmethod
    def from_recipe(cls, name: str = "assignment", **fields) -> TrainConfig:
        """The named recipe (RECIPES) with `fields` overriding its values."""
        if name not in RECIPES:
            raise BadValue("recipe", f"must be one of {', '.join(RECIPES)}, got {name}")
        return cls(**(RECIPES[name] | fields))

    @property
    def task(self) -> Task:
        return Task(self.dataset, self.data_dir)

    def resolved_out_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir else default_out_dir(self.task, self.batchnorm)

    def resume_key(self) -> dict:
        """What must be equal for an unfinished run to be continued (epochs may grow). Not `devices`:
        the replicas compute one device's steps (up to rounding), so a run may resume on others."""
        keys = ("dataset", "data_dir", "batchnorm", "batch_size", "lr", "lr_schedule", "seed", "val_size",
                "subset", "steps_per_execution", "optimizer", "label_smoothing", "noise_sd")
        key = {k: getattr(self, k) for k in keys} | {"precision": resolve_precision(self.precision),
                                                     "adversarial": self.adversarial and self.adversarial.to_dict()}
        if self.lr_schedule != "constant":
            key["epochs"] = self.epochs  # the decay is spread over all epochs
        if self.lr_schedule == "warmup_cosine":
            key["warmup"] = self.warmup
        return key


@dataclass
class TrainResult:
    model: object                    # the trained keras.Model, float32
    history: list[dict]              # rows of history.csv
    steps: list[dict]                # rows of steps.csv
    metrics: dict                    # what metrics.json holds
    out_dir: Path
    resumed_from: int = 0            # epochs already done when this call started
    test: object = field(default=None, repr=False)  # experiments.evaluation.EvalResult on the test split


def default_out_dir(task: Task, batchnorm: bool) -> Path:
    """runs/cnn and runs/cnn_bn for MNIST; runs/<dataset>_cnn[_bn] for any other task."""
    name = "cnn_bn" if batchnorm else "cnn"
    return RUNS / (name if task.dataset == "mnist" and task.data_dir is None else f"{task.slug}_{name}")
