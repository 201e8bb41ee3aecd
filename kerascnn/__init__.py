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


#: Where the pretrained models live: one run folder per model (saved_models/cnn, saved_models/cnn_bn).
SAVED_MODELS = _saved_models()
DEFAULT_MODEL = SAVED_MODELS / "cnn" / "model.keras"


class UserError(Exception):
    """A problem with the user's input (a file, an option, missing data): shown as one line."""

    exit_code = 1  # the command's exit status when this ends it


class BadValue(UserError):
    """A parameter value no run can use. `param` names the library parameter (`patch`, `class_name`);
    the CLI shows it as its option (`--patch`) and exits 2, like a value Click itself rejects."""

    exit_code = 2

    def __init__(self, param: str, message: str):
        self.param = param
        self.message = message
        super().__init__(f"{param}: {message}")


def first_line(error: BaseException, limit: int | None = 200) -> str:
    """An exception as the tail of a one-line error: its message's first line (at most `limit`
    characters), or its type's name when it has no message."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__
