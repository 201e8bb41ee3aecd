"""Shared fixtures: a synthetic MNIST-like IDX folder and a tiny saved model, so that unit and CLI
tests need neither the real data nor a trained network."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests.support import synthetic_digits  # noqa: E402


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory):
    """A folder holding the four IDX files (train gzipped, test not) of 600 + 200 synthetic digits."""
    from kerascnn.data.sources import write_idx

    folder = tmp_path_factory.mktemp("idx")
    x, y = synthetic_digits(600, seed=1)
    xt, yt = synthetic_digits(200, seed=2)
    write_idx(folder / "train-images-idx3-ubyte.gz", x)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y)
    write_idx(folder / "t10k-images-idx3-ubyte", xt)
    write_idx(folder / "t10k-labels-idx1-ubyte", yt)
    return folder


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """The assignment's architecture (MNIST shape) with its random initial weights, saved as .keras."""
    import keras

    from kerascnn.outputs import store
    from kerascnn.model.network import build_model

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    store.save_model(build_model(), path)
    return path
