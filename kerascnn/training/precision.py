"""The arithmetic of a training run: "bf16" (Keras' mixed_bfloat16: float32 variables, logits and
loss), "fp32", or "auto" (bf16 where the hardware has native bf16 arithmetic)."""
from __future__ import annotations

PRECISIONS = ("auto", "bf16", "fp32")


#: NVIDIA's first compute capability with bf16 tensor cores (Ampere, 8.0); older GPUs emulate it slowly.
BF16_COMPUTE_CAPABILITY = (8, 0)


def gpu_has_bf16(details: dict) -> bool:
    """True when a GPU's details (tf.config.experimental.get_device_details) give compute capability >= 8.0."""
    capability = details.get("compute_capability")
    return capability is not None and tuple(capability) >= BF16_COMPUTE_CAPABILITY


def has_bf16_hardware() -> bool:
    """True where training in bf16 is native: with GPUs, when every one has compute capability >= 8.0
    (an older GPU trains in fp32, whatever the CPU); without, a CPU with AVX512_BF16 or AMX."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return all(gpu_has_bf16(tf.config.experimental.get_device_details(gpu)) for gpu in gpus)
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    if precision == "auto":
        return "bf16" if has_bf16_hardware() else "fp32"
    return precision


def dtype_policy(precision: str) -> str:
    return {"bf16": "mixed_bfloat16", "fp32": "float32"}[resolve_precision(precision)]


def share_gpus() -> int:
    """Memory growth on every GPU (so that several --jobs workers share one GPU instead of the first
    taking all of its memory); call before TensorFlow initialises its devices. Returns the GPU count;
    a GPU already initialised keeps its setting."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # devices are up already: TensorFlow keeps what it has
            pass
    return len(gpus)
