"""More than one device: MirroredStrategy over two logical CPU devices gives one device's run.

The logical devices must be made before TensorFlow initialises its devices, and pytest's process
has TensorFlow up already, so the runs happen in a fresh Python process (`_child`); this process
then reads what they wrote with Keras and the csv module only, and compares.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.training.config import TrainConfig
from tests.support import load_model

REPO = Path(__file__).resolve().parent.parent
# Measured (fp32, 300 synthetic or MNIST images, batch 32, 1-2 epochs): the two runs' weights differ by
# at most 1e-7, the losses by 1e-7 relative; a wrong replica scaling changes the first step's loss 2x.
WEIGHT_ATOL = 1e-5
LOSS_RTOL = 1e-5


def _child(data_dir: str, out: str) -> None:
    """Runs in a fresh process: two logical CPU devices, then the same run on one and on both."""
    from kerascnn.training import devices
    from kerascnn.training.fit import train

    devices.prepare(2)
    for count in (1, 2):
        config = TrainConfig(data_dir=data_dir, subset=300, val_size=40, epochs=1, batch_size=32, precision="fp32",
                             val_every=0, devices=count, out_dir=os.path.join(out, f"devices{count}"))
        train(config, verbose=0)
    try:
        devices.prepare(3)  # too late: TensorFlow's devices are up
    except BadValue as e:
        print(json.dumps({"late": str(e)}))


def _steps(folder: Path) -> list[dict]:
    with open(folder / "steps.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_two_logical_cpu_devices_train_as_one(tmp_path, idx_dir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    code = "import sys; from tests.test_devices import _child; _child(sys.argv[1], sys.argv[2])"
    done = subprocess.run([sys.executable, "-c", code, str(idx_dir), str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    late = json.loads(done.stdout.strip().splitlines()[-1])["late"]
    assert "before TensorFlow starts" in late and "\n" not in late

    one, two = tmp_path / "devices1", tmp_path / "devices2"
    m1, m2 = (json.loads((f / "metrics.json").read_text()) for f in (one, two))
    assert (m1["devices"], m2["devices"]) == (1, 2)
    assert m2["steps_per_execution"] == 1 and m1["steps_per_execution"] == 64
    w1, w2 = (load_model(f / "model.keras").get_weights() for f in (one, two))
    assert max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)) < WEIGHT_ATOL
    s1, s2 = _steps(one), _steps(two)
    assert len(s1) == len(s2) == -(-260 // 32)  # one row per global batch on both
    for name in ("loss", "accuracy"):  # each row is the whole batch's, not one replica's or their sum
        np.testing.assert_allclose([float(r[name]) for r in s2], [float(r[name]) for r in s1], rtol=LOSS_RTOL)
    # the first batch's loss of a 10-class network at its initial weights: near ln 10, on both
    assert abs(float(s2[0]["loss"]) - np.log(10)) < 0.5
    for key in ("test_loss", "val_loss"):
        assert m2[key] == pytest.approx(m1[key], rel=LOSS_RTOL)
    assert m2["test_accuracy"] == m1["test_accuracy"]


@pytest.mark.parametrize("value", [0, -1, "some", True, 1.5])
def test_bad_device_counts_are_refused_before_work(value):
    with pytest.raises(BadValue, match="devices"):
        TrainConfig(devices=value).check()


def test_one_device_is_the_plain_path_and_not_part_of_the_resume_key():
    from kerascnn.training import devices

    assert devices.strategy(1) == (1, None)
    assert TrainConfig(devices=2).resume_key() == TrainConfig().resume_key()


# ---------------------------------------------------------------------------- GPUs, faked (no GPU is lent here)
def _fake_gpus(monkeypatch, capabilities):
    import tensorflow as tf

    gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(len(capabilities))]
    details = {gpu.name: ({} if c is None else {"compute_capability": c, "device_name": "fake"})
               for gpu, c in zip(gpus, capabilities)}
    grown = []
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: list(gpus) if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda gpu: details[gpu.name])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, on: grown.append((gpu.name, on)))
    return grown


@pytest.mark.parametrize("capabilities, bf16", [([(8, 0)], True), ([(9, 0), (8, 6)], True), ([(7, 5)], False),
                                                ([(8, 0), (7, 0)], False), ([None], False)])
def test_bf16_on_a_gpu_follows_its_compute_capability_not_the_cpu(monkeypatch, capabilities, bf16):
    from kerascnn.training import precision

    _fake_gpus(monkeypatch, capabilities)
    assert precision.has_bf16_hardware() is bf16
    assert precision.resolve_precision("auto") == ("bf16" if bf16 else "fp32")
    assert precision.resolve_precision("fp32") == "fp32"


def test_memory_growth_is_set_on_every_gpu(monkeypatch):
    from kerascnn.training import precision

    grown = _fake_gpus(monkeypatch, [(8, 0), (8, 0)])
    assert precision.share_gpus() == 2
    assert grown == [("/physical_device:GPU:0", True), ("/physical_device:GPU:1", True)]
