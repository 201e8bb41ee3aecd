"""kerascnn: study any Keras image classifier end to end (train, count, inspect, attack, export);
the classic MNIST CNN is the default.

Importing this package does no work: TensorFlow is imported by the modules that need it.
"""
from pathlib import Path

__version__ = "0.3.0"  # semantic versioning; CHANGELOG.md says what each version added


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



#: The public API: one function per command, imported on first use (PEP 562), so that `import
#: kerascnn` imports no TensorFlow. kc.attack (nontargeted, targeted, noise, minimal, universal) is
#: the `kerascnn attack ...` group; kc.attacks and kc.attributions work on arrays, torchattacks-style.
_PUBLIC = {
    "evaluate": "kerascnn.api.inspection", "filters": "kerascnn.api.inspection",
    "activations": "kerascnn.api.inspection", "occlude": "kerascnn.api.inspection",
    "explain": "kerascnn.api.inspection", "concepts": "kerascnn.api.inspection",
    "robustness": "kerascnn.api.robust", "certify": "kerascnn.api.robust", "corruptions": "kerascnn.api.robust",
    "transfer": "kerascnn.api.robust",
    "train": "kerascnn.api.runs", "summary": "kerascnn.api.runs", "export": "kerascnn.api.runs",
    "compare": "kerascnn.api.studies", "report": "kerascnn.reporting.public",
    "Result": "kerascnn.api.results",
}
_NAMESPACES = {"attack": "kerascnn.api.attack", "attacks": "kerascnn.attacks", "attributions": "kerascnn.attributions",
               "errors": "kerascnn.errors"}
__all__ = sorted([*_PUBLIC, *_NAMESPACES, "__version__", "SAVED_MODELS", "DEFAULT_MODEL", "RUNS"])


def __getattr__(name: str):
    import importlib

    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
    elif name in _NAMESPACES:
        value = importlib.import_module(_NAMESPACES[name])
    else:
        raise AttributeError(f"module 'kerascnn' has no attribute {name!r}")
    globals()[name] = value  # once: later reads are plain attribute reads
    return value


def __dir__():
    return __all__
