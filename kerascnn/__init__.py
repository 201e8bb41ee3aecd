"""kerascnn: a classic MNIST CNN, studied end to end (train, count, inspect, attack, export).

Importing this package does no work: TensorFlow is imported by the modules that need it.
"""
from pathlib import Path

__version__ = "0.1.0"

#: Where the pretrained models live (next to the package, in the repository's saved_models/).
SAVED_MODELS = Path(__file__).resolve().parent.parent / "saved_models"
DEFAULT_MODEL = SAVED_MODELS / "cnn" / "model.keras"


class UserError(Exception):
    """A problem with the user's input (a file, an option, missing data): shown as one line."""

    exit_code = 1  # the command's exit status when this ends it
