"""kerascnn: study any Keras image classifier end to end (train, count, inspect, attack, export);
the classic MNIST CNN is the default.

Importing this package does no work: TensorFlow is imported by the modules that need it.
"""
from pathlib import Path

__version__ = "0.1.0"


def _saved_models() -> Path:
    """Installed (a wheel, `pip install .`): the package data kerascnn/saved_models/. From the
    repository (an editable install, a checkout on the path): the repository's saved_models/, the
    one folder that setup.py ships as that package data."""
    package = Path(__file__).resolve().parent
    return package / "saved_models" if (package / "saved_models").is_dir() else package.parent / "saved_models"


#: Where commands write when --out is not given: runs/<command>/, runs/cnn/ for training (ignored by git;
#: the shipped models in saved_models/ are only replaced when --out names them).
RUNS = Path("runs")
#: Where the pretrained models live: one run folder per model (saved_models/cnn, saved_models/cnn_bn).
SAVED_MODELS = _saved_models()
DEFAULT_MODEL = SAVED_MODELS / "cnn" / "model.keras"


