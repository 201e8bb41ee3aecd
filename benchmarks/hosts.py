"""The host a benchmark runs on, and the CPU kernel settings that benchmarks compare.

machine() is the first line of every result file: the CPU's model and its avx/amx/fma flags (read from
the OS as lscpu reads them, by kerascnn.cpu), the cores, Python, and the kernels that a kerascnn
process started now would run (kerascnn.cpu.choose_kernels on a copy of the environment).

KERNELS names TensorFlow's settings as environment variables for a fresh process (None: removed), each
with the environment that puts PyTorch (the reference) on the same class of host. On an AVX-512 host,
`ONEDNN_MAX_CPU_ISA=AVX2` keeps oneDNN to the kernels an AVX2-only CPU runs; it also reaches TensorFlow's
Eigen path, whose matrix products call oneDNN's sgemm (ONEDNN_VERBOSE=1 shows `gemm_api` with either
setting). For PyTorch the same class of host also takes ATen's and MKL's AVX2 paths.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kerascnn.cpu import choose_kernels, read_cpu  # noqa: E402  (no TensorFlow)

#: Variables a kernel setting owns: removed unless the setting gives them.
OWNED = {"TF_ENABLE_ONEDNN_OPTS": None, "KERASCNN_ONEDNN_SET": None, "ONEDNN_MAX_CPU_ISA": None}
TORCH_AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
TORCH_NATIVE = dict.fromkeys(TORCH_AVX2)
KERNELS = {
    # name: (TensorFlow's environment, PyTorch's on the same class of host)
    "auto": (OWNED, TORCH_NATIVE),  # what kerascnn chooses on this host (kerascnn.cpu)
    "eigen": (OWNED | {"TF_ENABLE_ONEDNN_OPTS": "0"}, TORCH_NATIVE),
    "onednn": (OWNED | {"TF_ENABLE_ONEDNN_OPTS": "1"}, TORCH_NATIVE),
    "eigen_avx2": (OWNED | {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}, TORCH_AVX2),
    "onednn_avx2": (OWNED | {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}, TORCH_AVX2),
}


def parse_kernels(text: str) -> list[str]:
    """"eigen,onednn,onednn_avx2" -> the names, each checked against KERNELS."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in KERNELS]
    if unknown or not names:
        raise SystemExit(f"--kernels: choose from {', '.join(KERNELS)}, got {text!r}")
    return names


def torch_variant(name: str) -> str:
    """The PyTorch run that goes beside kernel setting `name`: "torch", or "torch_avx2" on an AVX2-limited host."""
    return "torch_avx2" if KERNELS[name][1] is TORCH_AVX2 else "torch"


def environment(*changes: dict | None) -> dict:
    """os.environ with `changes` applied in order (a None value removes the variable)."""
    merged = dict(os.environ)
    for change in changes:
        merged |= change or {}
    return {k: v for k, v in merged.items() if v is not None}


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    model, flags = read_cpu()
    if model:
        info["cpu"] = model
    if flags:
        info["avx512_bf16"] = "avx512_bf16" in flags
        info["flags"] = sorted({f for f in flags if f.startswith(("avx", "amx", "fma"))})  # what oneDNN picks by
    choice = choose_kernels(dict(os.environ))
    info["kernels"] = {"kernels": choice.kernels, "set_by": choice.set_by}
    if os.environ.get("ONEDNN_MAX_CPU_ISA"):
        info["onednn_max_cpu_isa"] = os.environ["ONEDNN_MAX_CPU_ISA"]
    return info


def host() -> str:
    """The host in a few words, for every summary line: its CPU model and whether it has bf16."""
    info = machine()
    return f"{info.get('cpu', '?')}, {info['cpus']} cpus, {'avx512_bf16' if info.get('avx512_bf16') else 'no bf16'}"
