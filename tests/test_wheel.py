"""The built wheel installs like a package: its pretrained models inside it, found from anywhere.

The wheel is built from a copy of the working tree (no build/ or egg-info left in the repository)
with the test environment's setuptools, installed --no-deps into a folder of its own, and run with
only that folder on PYTHONPATH, from another directory; its dependencies come from this environment.
"""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "kerascnn", "cli", "saved_models")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, site folder holding the installed wheel, an unrelated working directory)."""
    tmp = tmp_path_factory.mktemp("wheel")
    (tmp / "src").mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tmp / "src" / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / name).exists():
            shutil.copy2(ROOT / name, tmp / "src" / name)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--wheel-dir", tmp / "dist", tmp / "src"], cwd=tmp)
    wheel, = (tmp / "dist").glob("kerascnn-*.whl")
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
          "--target", tmp / "site", wheel], cwd=tmp)
    (tmp / "elsewhere").mkdir()
    return wheel, tmp / "site", tmp / "elsewhere"


def _run(command, cwd, env=None) -> str:
    done = subprocess.run([os.fspath(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{command[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _env(site: Path) -> dict:
    return {**os.environ, "PYTHONPATH": os.fspath(site), "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_the_wheel_holds_the_pretrained_models(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in ("cnn", "cnn_bn"):
        for file in ("model.keras", "metrics.json", "history.csv"):
            assert f"kerascnn/saved_models/{model}/{file}" in names
    assert not any(n.startswith(("saved_models/", "tests/")) for n in names)


def test_the_installed_package_loads_its_default_model_from_anywhere(installed):
    _, site, elsewhere = installed
    script = ("import kerascnn, keras, numpy as np\n"
              "print(kerascnn.__file__)\n"
              "print(kerascnn.DEFAULT_MODEL)\n"
              "model = keras.models.load_model(kerascnn.DEFAULT_MODEL)\n"
              "shape = model.input_shape[1:]\n"
              "print(model.predict(np.zeros((1, *shape), 'float32'), verbose=0).shape)\n")
    package, default_model, predicted = _run([sys.executable, "-c", script], elsewhere, _env(site)).split("\n")[:3]
    assert Path(package).resolve().is_relative_to(site.resolve())
    assert Path(default_model).resolve().is_relative_to(site.resolve()) and Path(default_model).is_file()
    assert predicted.startswith("(1, ")


def test_the_installed_command_answers(installed):
    _, site, elsewhere = installed
    script = site / "bin" / "kerascnn"  # pip --target puts the console script here
    assert "Usage: kerascnn" in _run([sys.executable, script, "--help"], elsewhere, _env(site))
