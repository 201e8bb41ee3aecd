"""Which CPU kernels TensorFlow will run, chosen before TensorFlow starts.

TensorFlow 2.21's x86 Linux wheels carry two sets of CPU kernels: oneDNN's (the library PyTorch calls)
and Eigen's. Which one runs is decided once, when TensorFlow starts, from `TF_ENABLE_ONEDNN_OPTS` or,
unset, from the CPU: oneDNN only where the CPU has AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX
(`DefaultOneDnnPolicy` in tensorflow/core/util/port.cc). On the commonest CPUs, AVX2 without those
(most laptops, many cloud machines, older Xeons and EPYCs), TensorFlow runs Eigen's kernels, and
training is markedly slower than with oneDNN's. `choose_kernels()` sets `TF_ENABLE_ONEDNN_OPTS=1`
there, before TensorFlow is imported; the user's own setting, whatever it is ("0" included), wins.

The CPU is read from the operating system, never through TensorFlow: /proc/cpuinfo on Linux,
`sysctl` on macOS, `platform.machine()` for the architecture. This module imports nothing of the
project and no TensorFlow, so the CLI, the Python API and every study worker call it first.

Environment:
    TF_ENABLE_ONEDNN_OPTS   the user's choice (TensorFlow's own variable): "1"/"true" oneDNN,
                            "0"/"false" Eigen; set by choose_kernels() only when unset
    KERASCNN_ONEDNN_SET     "1" when kerascnn set TF_ENABLE_ONEDNN_OPTS (so that worker processes,
                            which inherit the variable, record who set it)
    KERASCNN_CPUINFO        a file read instead of /proc/cpuinfo (Linux format); for tests
"""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from typing import MutableMapping

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
MARKER = "KERASCNN_ONEDNN_SET"
CPUINFO_OVERRIDE = "KERASCNN_CPUINFO"

X86 = frozenset({"x86_64", "amd64", "x64", "i386", "i486", "i586", "i686", "x86"})
#: The CPU features for which TensorFlow turns oneDNN on by itself on Linux (underscores dropped,
#: so that /proc/cpuinfo's avx512_vnni and macOS's AVX512VNNI compare equal).
TENSORFLOW_ONEDNN_FEATURES = frozenset({"avx512vnni", "avx512bf16", "avxvnni", "amxtile", "amxint8", "amxbf16"})

ONEDNN, EIGEN = "onednn", "eigen"
TF_ONEDNN, TF_EIGEN, TF_DEFAULT = "onednn (TensorFlow's default)", "eigen (TensorFlow's default)", "tensorflow default"


@dataclass(frozen=True)
class KernelChoice:
    """What was decided, and why.

    model: the CPU's name ("AMD EPYC 7B13"; "" when unknown); arch: platform.machine() ("x86_64");
    flags: the CPU's avx*/amx* flags, lower case, sorted; kernels: "onednn", "eigen",
    "onednn (TensorFlow's default)", "eigen (TensorFlow's default)" or "tensorflow default" (not x86:
    left to TensorFlow); set_by: "kerascnn", "user" or "tensorflow"; set_variable: this call set
    TF_ENABLE_ONEDNN_OPTS; too_late: TensorFlow was already imported, so nothing was changed;
    message: one line for stderr when this call changed something, else None.
    """
    model: str
    arch: str
    flags: tuple[str, ...]
    kernels: str
    set_by: str
    set_variable: bool = False
    too_late: bool = False
    message: str | None = None

    def to_dict(self) -> dict:
        """For metrics.json and benchmark lines."""
        return {"model": self.model, "arch": self.arch, "flags": list(self.flags), "kernels": self.kernels,
                "set_by": self.set_by}


# ---------------------------------------------------------------------------- reading the CPU
def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """(model, flags) from /proc/cpuinfo's text: x86's `model name` and `flags`, ARM's `Features`
    (and `Model name`, or `CPU implementer`/`CPU part` where no name is given). First CPU only."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        if colon and key not in fields:
            fields[key] = value.strip()
    model = fields.get("model name") or fields.get("hardware") or fields.get("model") or ""
    if not model and "cpu implementer" in fields:
        model = f"implementer {fields['cpu implementer']}, part {fields.get('cpu part', '?')}"
    flags = (fields.get("flags") or fields.get("features") or "").lower().split()
    return model, tuple(sorted(set(flags)))


def parse_sysctl(text: str) -> tuple[str, tuple[str, ...]]:
    """(model, flags) from `sysctl -n machdep.cpu.brand_string machdep.cpu.features
    machdep.cpu.leaf7_features` (an x86 Mac): the brand, then two lines of upper-case features
    (AVX1.0, AVX2, AVX512F, AVX512VNNI ...)."""
    lines = text.splitlines()
    model = lines[0].strip() if lines else ""
    flags = {f.lower().replace("avx1.0", "avx") for line in lines[1:] for f in line.split()}
    return model, tuple(sorted(flags))


@functools.lru_cache(maxsize=8)
def read_cpu(cpuinfo: str | None = None, system: str | None = None) -> tuple[str, tuple[str, ...]]:
    """(model, all flags) of this machine, read once per source. cpuinfo: a file in /proc/cpuinfo's
    format to read instead; system: sys.platform."""
    system = system or sys.platform
    try:
        if cpuinfo is not None or system.startswith("linux"):
            with open(cpuinfo or "/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                return parse_cpuinfo(f.read())
        if system == "darwin":
            done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string", "machdep.cpu.features",
                                   "machdep.cpu.leaf7_features"], capture_output=True, text=True, timeout=5)
            return parse_sysctl(done.stdout)
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "", ()


def vector_flags(flags) -> tuple[str, ...]:
    """The flags that decide the kernels: avx*, amx*."""
    return tuple(f for f in flags if f.startswith(("avx", "amx")))


def tensorflow_picks_onednn(arch: str, flags, system: str) -> bool | None:
    """What TensorFlow 2.21 does with TF_ENABLE_ONEDNN_OPTS unset: True oneDNN, False Eigen, None
    not ours to say (not x86: on ARM TensorFlow has its own rule, for Neoverse V1)."""
    if arch.lower() not in X86:
        return None
    if system == "win32":
        return True
    if not system.startswith("linux"):
        return False  # macOS: off by default whatever the CPU
    return bool(TENSORFLOW_ONEDNN_FEATURES & {f.replace("_", "") for f in flags})


def setting_kernels(value: str) -> str | None:
    """The kernels that a value of TF_ENABLE_ONEDNN_OPTS gives: TensorFlow reads 0/1/true/false; with
    anything else (a warning) or an empty value it keeps its default (None here)."""
    value = value.strip().lower()
    return ONEDNN if value in ("1", "true") else EIGEN if value in ("0", "false") else None


# ---------------------------------------------------------------------------- the choice
_CHOSEN: KernelChoice | None = None


def choose_kernels(environ: MutableMapping[str, str] | None = None, cpuinfo: str | None = None, *,
                   machine: str | None = None, system: str | None = None) -> KernelChoice:
    """Sets TF_ENABLE_ONEDNN_OPTS=1 in `environ` where TensorFlow would otherwise run Eigen's kernels
    (an x86 CPU without AVX512_VNNI/BF16, AVX_VNNI or AMX), unless the user set it or TensorFlow is
    already imported (then nothing changes and nothing is said). Call it before importing TensorFlow.

    Arguments:
        environ: the environment to read and change (default os.environ)
        cpuinfo: a file in /proc/cpuinfo's format to read instead of the OS (default:
            $KERASCNN_CPUINFO, else the OS)
        machine, system: platform.machine() and sys.platform, given by tests

    With no arguments the first decision is kept and returned by every later call (so metrics.json
    records the choice made at start, not one re-made after TensorFlow started).
    """
    global _CHOSEN
    default = environ is None and cpuinfo is None and machine is None and system is None
    if default and _CHOSEN is not None:
        return _CHOSEN
    env = os.environ if environ is None else environ
    choice = _decide(env, cpuinfo or env.get(CPUINFO_OVERRIDE) or None, machine or platform.machine(),
                     system or sys.platform)
    if default:
        _CHOSEN = choice
    return choice


def _decide(env: MutableMapping[str, str], cpuinfo: str | None, arch: str, system: str) -> KernelChoice:
    model, all_flags = read_cpu(cpuinfo, system)
    flags = vector_flags(all_flags)
    tensorflow_onednn = tensorflow_picks_onednn(arch, all_flags, system)
    default = TF_DEFAULT if tensorflow_onednn is None else TF_ONEDNN if tensorflow_onednn else TF_EIGEN
    common = dict(model=model, arch=arch, flags=flags)
    if VARIABLE in env:
        ours = env.get(MARKER) == "1" and env[VARIABLE] == "1"
        return KernelChoice(**common, kernels=setting_kernels(env[VARIABLE]) or default,
                            set_by="kerascnn" if ours else "user")
    started = "tensorflow" in sys.modules
    if tensorflow_onednn is not False or started:
        return KernelChoice(**common, kernels=default, set_by="tensorflow", too_late=started and tensorflow_onednn is False)
    env[VARIABLE] = "1"
    env[MARKER] = "1"
    shown = ", ".join(f for f in flags if f in ("avx", "avx2", "avx512f")) or "no AVX"
    why = "no AVX512_VNNI, AVX512_BF16 or AMX" if system.startswith("linux") else f"on {system}"
    message = (f"kerascnn: TF_ENABLE_ONEDNN_OPTS=1 (oneDNN kernels): on this CPU ({model or arch}: {shown}; {why}) "
               f"TensorFlow would run its slower Eigen kernels; set TF_ENABLE_ONEDNN_OPTS=0 to keep them")
    return KernelChoice(**common, kernels=ONEDNN, set_by="kerascnn", set_variable=True, message=message)
