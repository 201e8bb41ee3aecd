"""Training on more than one device: `tf.distribute.MirroredStrategy` over the GPUs TensorFlow sees,
or, on a machine without GPUs, over N logical CPU devices (how Keras' own integration tests try it).

`devices` is "all" (every GPU; one device without a GPU) or a count N. One device is the plain path:
no strategy at all, so `kerascnn train` without --devices runs exactly as before. With N > 1 the
global batch (--batch-size) is split across the N replicas and their gradients are summed (Keras
scales each replica's loss by 1/N), so a run gives one device's results up to floating-point noise.

Logical CPU devices can only be made before TensorFlow initialises its devices (its first op,
dataset or model): `prepare` is what a command calls first; `strategy` calls it again (harmless
once done) and says in one line when it is too late.

Beyond one machine: Keras 3's `model.fit` does not work under MultiWorkerMirroredStrategy
(keras-team/keras#20585: PerReplica values reach the model), so there is none here; `kerascnn
compare --jobs` and `--first-seed K --seeds 1` per machine are the way (see README).
"""
from __future__ import annotations

from kerascnn.errors import BadValue

ALL = "all"


def check(devices) -> None:
    """Raises BadValue unless `devices` is "all" or a whole number >= 1 (no TensorFlow needed)."""
    if devices == ALL:
        return
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise BadValue("devices", f"must be 'all' or a whole number >= 1, got {devices!r}")


def resolve(devices) -> int:
    """How many replicas `devices` means on this machine: "all" is every GPU TensorFlow sees (1
    without GPUs); N is N GPUs, or N logical CPU devices when there is no GPU."""
    import tensorflow as tf

    check(devices)
    gpus = tf.config.list_physical_devices("GPU")  # lists only: does not initialise the devices
    if devices == ALL:
        return max(1, len(gpus))
    if gpus and devices > len(gpus):
        raise BadValue("devices", f"{devices} asked for, but TensorFlow sees {len(gpus)} GPU(s)")
    return devices


def prepare(devices) -> int:
    """Makes the devices ready and returns their count: without GPUs and N > 1, splits the CPU into N
    logical devices. Call it before TensorFlow initialises its devices (before loading data)."""
    import tensorflow as tf

    count = resolve(devices)
    if count == 1 or tf.config.list_physical_devices("GPU"):
        return count
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return count  # made earlier in this process
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:  # TensorFlow's devices are up already
        have = len(tf.config.list_logical_devices("CPU"))
        raise BadValue("devices", f"{count} logical CPU devices must be made before TensorFlow starts, and this "
                                  f"process already runs on {have}; call kerascnn.training.devices.prepare({count}) first, "
                                  f"or train in a fresh process") from None
    return count


def strategy(devices):
    """(count, strategy): strategy is None for one device (the plain path), else a MirroredStrategy
    over the first `count` GPUs, or the `count` logical CPU devices."""
    import tensorflow as tf

    count = prepare(devices)
    if count == 1:
        return 1, None
    names = [d.name for d in tf.config.list_logical_devices("GPU")] or \
            [d.name for d in tf.config.list_logical_devices("CPU")]
    return count, tf.distribute.MirroredStrategy(names[:count])

