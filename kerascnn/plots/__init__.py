"""Figures: one function per figure, each taking results (arrays, dataclasses) and returning a
matplotlib Figure. Nothing here computes with the model; nothing here saves (see store.save_figure).

Submodules by subject; everything is re-exported here, so `from kerascnn import plots;
plots.loss_curves(...)` works for all of them.
"""
from kerascnn.plots.attacks import *  # noqa: F401,F403
from kerascnn.plots.common import *  # noqa: F401,F403
from kerascnn.plots.concepts import *  # noqa: F401,F403
from kerascnn.plots.explanations import *  # noqa: F401,F403
from kerascnn.plots.inspection import *  # noqa: F401,F403
from kerascnn.plots.maximize import *  # noqa: F401,F403
from kerascnn.plots.metrics import *  # noqa: F401,F403
from kerascnn.plots.occlusion import *  # noqa: F401,F403
from kerascnn.plots.study import *  # noqa: F401,F403
from kerascnn.plots.training import *  # noqa: F401,F403
