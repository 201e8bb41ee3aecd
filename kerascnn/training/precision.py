"""The arithmetic of a training run: "bf16" (Keras' mixed_bfloat16: float32 variables, logits and
loss), "fp32", or "auto" (bf16 where the hardware has native bf16 arithmetic)."""
from __future__ import annotations

PRECISIONS = ("auto", "bf16", "fp32")


def has_bf16_hardware() -> bool:
    """True on a GPU, or on a CPU with native bf16 arithmetic (AVX512_BF16 or AMX)."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return True
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
