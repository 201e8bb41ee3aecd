"""Test helpers shared by several test files (markers, synthetic data, independent math, the CLI)."""
import os

import numpy as np
import pytest

from kerascnn import DEFAULT_MODEL

TFDS_DIR = os.environ.get("TFDS_DATA_DIR", "")
HAVE_MNIST = bool(TFDS_DIR) and os.path.isdir(os.path.join(TFDS_DIR, "mnist"))
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="real MNIST not at hand (set TFDS_DATA_DIR)")
needs_pretrained = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no pretrained model in saved_models/")


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 28, 28) whose class c is a bright 6x6 block at a class-specific place, plus
    noise: easy to learn in a few steps, so tests can check that training learns something."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28))
    for i, c in enumerate(labels):
        row, col = 3 + 8 * (c // 4), 3 + 8 * (c % 4)
        images[i, row:row + 6, col:col + 6] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


# ---------------------------------------------------------------------------- independent math
def hand_softmax(z) -> np.ndarray:
    """Row-wise softmax in float64, written here rather than taken from kerascnn."""
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def probabilities(model, images) -> np.ndarray:
    """A logits model's own answer, computed without kerascnn: a direct call and a float64 softmax."""
    return hand_softmax(np.asarray(model(np.asarray(images, np.float32), training=False), np.float64))


def load_model(path):
    """A saved .keras file, loaded by Keras itself (not through kerascnn)."""
    import keras

    return keras.models.load_model(path, compile=False)


# ---------------------------------------------------------------------------- the commands
def cli(*args, **kwargs):
    """Runs `kerascnn ARGS` in Click's test runner (stdout and stderr kept apart in the result)."""
    from click.testing import CliRunner

    from cli.main import cli as group

    return CliRunner().invoke(group, [str(a) for a in args], **kwargs)


def assert_one_line_error(result, fragment: str, exit_code: int | None = None) -> str:
    """The command failed with one line `Error: ...` holding `fragment`, and no traceback."""
    assert result.exit_code != 0, result.output
    if exit_code is not None:
        assert result.exit_code == exit_code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.output and fragment in lines[0], lines[0]
    return lines[0]


def written(folder) -> set[str]:
    """The files a command wrote into its --out folder (its ownership marker checked and left out)."""
    import json

    from kerascnn.outputs.folders import MARKER

    names = {p.name for p in folder.iterdir()}
    assert MARKER in names, names
    names.discard(MARKER)
    assert set(json.loads((folder / MARKER).read_text())["files"]) == names
    return names
