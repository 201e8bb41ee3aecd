"""kerascnn.cpu: which kernels TensorFlow will run, chosen from the CPU before TensorFlow starts.

Fake /proc/cpuinfo texts and fake environments for the rule; two fresh processes for the CLI's
start (TensorFlow must not be imported yet there, and must honour what was chosen)."""
import json
import os
import platform
import queue
import subprocess
import sys
from pathlib import Path

import pytest

from kerascnn import cpu
from kerascnn.study import workers

ROOT = Path(__file__).resolve().parent.parent

X86_BASE = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht "
            "syscall nx lm constant_tsc pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c "
            "rdrand hypervisor lahf_lm abm bmi1 avx2 smep bmi2 erms rdseed adx smap clflushopt xsaveopt")
AVX512 = "avx512f avx512dq avx512cd avx512bw avx512vl"


def x86(model: str, extra: str = "", cpus: int = 2) -> str:
    one = f"processor\t: {{n}}\nvendor_id\t: x\nmodel name\t: {model}\nflags\t\t: {X86_BASE} {extra}\nbogomips\t: 5000\n\n"
    return "".join(one.format(n=n) for n in range(cpus))


CPUS = {
    # name: (cpuinfo text, machine, what TensorFlow does unset: True oneDNN / False Eigen / None not x86)
    "epyc_avx2": (x86("AMD EPYC 7B12", "sha_ni clzero"), "x86_64", False),
    "xeon_avx512_vnni": (x86("Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", f"{AVX512} avx512_vnni"), "x86_64", True),
    "xeon_avx512_only": (x86("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", AVX512), "x86_64", False),
    "epyc_bf16": (x86("AMD EPYC 9B14", f"{AVX512} avx512_bf16 avx512_vnni avx512vbmi"), "x86_64", True),
    "alder_lake_avx_vnni": (x86("12th Gen Intel(R) Core(TM) i7-1260P", "avx_vnni"), "x86_64", True),
    "graviton": ("processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics "
                 "fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs\nCPU implementer\t: 0x41\n"
                 "CPU architecture: 8\nCPU part\t: 0xd0c\n\n", "aarch64", None),
}


@pytest.fixture
def fake_cpu(tmp_path):
    """cpuinfo path and machine of one of CPUS."""
    def make(name):
        text, machine, _ = CPUS[name]
        path = tmp_path / f"{name}.cpuinfo"
        path.write_text(text)
        return str(path), machine
    return make


@pytest.fixture
def no_tensorflow(monkeypatch):
    """As before TensorFlow is imported (the real modules come back after the test)."""
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)


@pytest.mark.parametrize("name", list(CPUS))
def test_the_choice_for_each_cpu(name, fake_cpu, no_tensorflow):
    path, machine = fake_cpu(name)
    env = {}
    choice = cpu.choose_kernels(env, path, machine=machine, system="linux")
    tensorflow_onednn = CPUS[name][2]
    assert choice.arch == machine
    if tensorflow_onednn is False:  # TensorFlow would run Eigen: we ask for oneDNN and say so
        assert env == {"TF_ENABLE_ONEDNN_OPTS": "1", "KERASCNN_ONEDNN_SET": "1"}
        assert (choice.kernels, choice.set_by, choice.set_variable) == ("onednn", "kerascnn", True)
        assert "TF_ENABLE_ONEDNN_OPTS=1" in choice.message and "\n" not in choice.message
        assert "TF_ENABLE_ONEDNN_OPTS=0" in choice.message  # how to undo it
    else:
        assert env == {} and choice.message is None and not choice.set_variable
        assert choice.set_by == "tensorflow"
        assert choice.kernels == ("onednn (TensorFlow's default)" if tensorflow_onednn else "tensorflow default")


def test_what_the_cpu_is_read_as(fake_cpu):
    model, flags = cpu.read_cpu(fake_cpu("epyc_bf16")[0])
    assert model == "AMD EPYC 9B14"
    assert {"avx2", "avx512_bf16", "sse4_2"} <= set(flags) and "avx512_fp16" not in flags
    choice = cpu.choose_kernels({}, fake_cpu("epyc_avx2")[0], machine="x86_64", system="linux")
    assert choice.model == "AMD EPYC 7B12" and choice.flags == ("avx", "avx2")
    assert choice.to_dict() == {"model": "AMD EPYC 7B12", "arch": "x86_64", "flags": ["avx", "avx2"],
                                "kernels": choice.kernels, "set_by": choice.set_by}
    json.dumps(choice.to_dict())
    arm_model, arm_flags = cpu.read_cpu(fake_cpu("graviton")[0])
    assert arm_model == "implementer 0x41, part 0xd0c" and "asimd" in arm_flags and not cpu.vector_flags(arm_flags)


def test_a_macs_sysctl_and_the_rule_on_macos_and_windows(fake_cpu, no_tensorflow):
    text = ("Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz\nFPU VME DE PSE SSE SSE2 AVX1.0 RDRAND F16C\n"
            "RDWRFSGS TSC_THREAD_OFFSET BMI1 AVX2 SMEP BMI2 ERMS INVPCID FPU_CSDS MPX RDSEED ADX\n")
    model, flags = cpu.parse_sysctl(text)
    assert model.startswith("Intel(R) Core(TM) i9-9980HK") and cpu.vector_flags(flags) == ("avx", "avx2")
    vnni = ("avx2", "avx512f", "avx512vnni")  # macOS spells it without the underscore
    assert cpu.tensorflow_picks_onednn("x86_64", vnni, "linux") is True
    assert cpu.tensorflow_picks_onednn("x86_64", vnni, "darwin") is False  # off on macOS whatever the CPU
    assert cpu.tensorflow_picks_onednn("AMD64", ("avx2",), "win32") is True  # on by default on Windows
    assert cpu.tensorflow_picks_onednn("arm64", (), "darwin") is None
    env = {}
    mac = cpu.choose_kernels(env, fake_cpu("xeon_avx512_vnni")[0], machine="x86_64", system="darwin")
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "1" and "on darwin" in mac.message
    windows = cpu.choose_kernels(env := {}, fake_cpu("epyc_avx2")[0], machine="AMD64", system="win32")
    assert env == {} and windows.kernels == "onednn (TensorFlow's default)"


@pytest.mark.parametrize("value, kernels", [("0", "eigen"), ("1", "onednn"), ("false", "eigen"), ("True", "onednn")])
@pytest.mark.parametrize("name", ["epyc_avx2", "epyc_bf16"])
def test_the_users_setting_wins(value, kernels, name, fake_cpu, no_tensorflow):
    path, machine = fake_cpu(name)
    env = {"TF_ENABLE_ONEDNN_OPTS": value}
    choice = cpu.choose_kernels(env, path, machine=machine, system="linux")
    assert env == {"TF_ENABLE_ONEDNN_OPTS": value}
    assert (choice.kernels, choice.set_by, choice.set_variable, choice.message) == (kernels, "user", False, None)


def test_a_value_tensorflow_cannot_read_leaves_its_default(fake_cpu, no_tensorflow):
    env = {"TF_ENABLE_ONEDNN_OPTS": "yes"}
    choice = cpu.choose_kernels(env, fake_cpu("epyc_avx2")[0], machine="x86_64", system="linux")
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "yes"}
    assert (choice.kernels, choice.set_by) == ("eigen (TensorFlow's default)", "user")


def test_once_tensorflow_is_imported_nothing_is_changed(fake_cpu, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    env = {}
    choice = cpu.choose_kernels(env, fake_cpu("epyc_avx2")[0], machine="x86_64", system="linux")
    assert env == {} and choice.message is None and not choice.set_variable
    assert choice.too_late and (choice.kernels, choice.set_by) == ("eigen (TensorFlow's default)", "tensorflow")


def test_twice_is_once_and_a_worker_knows_who_set_it(fake_cpu, no_tensorflow):
    path, machine = fake_cpu("epyc_avx2")
    env = {}
    first = cpu.choose_kernels(env, path, machine=machine, system="linux")
    inherited = dict(env)  # what a worker process starts with
    again = cpu.choose_kernels(inherited, path, machine=machine, system="linux")
    assert inherited == env and again.message is None and not again.set_variable
    assert again.to_dict() == first.to_dict() == again.to_dict() | {"set_by": "kerascnn", "kernels": "onednn"}


def test_the_default_call_decides_once_and_reads_the_cpu_once(tmp_path, monkeypatch, no_tensorflow):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUS["epyc_avx2"][0])
    env = {"KERASCNN_CPUINFO": str(info)}
    monkeypatch.setattr(cpu.os, "environ", env)
    monkeypatch.setattr(cpu, "_CHOSEN", None)
    monkeypatch.setattr(cpu.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(cpu.sys, "platform", "linux")
    first = cpu.choose_kernels()
    assert first.set_variable and env["TF_ENABLE_ONEDNN_OPTS"] == "1"
    info.unlink()  # read once: a later decision would not find it
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    assert cpu.choose_kernels() is first  # not re-decided (it would be too late now)
    assert cpu.read_cpu(str(info), "linux") == cpu.parse_cpuinfo(CPUS["epyc_avx2"][0])


def test_a_study_worker_chooses_before_its_work(monkeypatch):
    order = []
    monkeypatch.setattr(workers, "choose_kernels", lambda: order.append("chose"))
    for key in workers._thread_env(1):
        monkeypatch.setenv(key, os.environ.get(key, "0"))  # restored after the test
    outcome = workers.ray_run(lambda payload, notify: order.append(payload) or "done", "work", queue.SimpleQueue(), 1,
                              False)
    assert outcome.value == "done" and order == ["chose", "work"]


# ---------------------------------------------------------------------------- fresh processes
def run_python(code: str, tmp_path, cpu_name: str | None, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "KERASCNN_ONEDNN_SET")}
    if cpu_name:
        path = tmp_path / "cpuinfo"
        path.write_text(CPUS[cpu_name][0])
        environment["KERASCNN_CPUINFO"] = str(path)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment | env, capture_output=True,
                          text=True, timeout=600)


MKL = "from tensorflow.python.util import _pywrap_util_port as port; print('onednn', port.IsMklEnabled())"


@pytest.mark.skipif(platform.machine().lower() not in cpu.X86, reason="x86 only")
def test_the_cli_asks_for_onednn_on_an_avx2_host_and_training_records_it(tmp_path, idx_dir):
    code = ("import os\nfrom cli.main import cli\ntry:\n    cli(['train', '--data-dir', %r, '--epochs', '1', "
            "'--subset', '64', '--val-size', '32', '--batch-size', '32', '--precision', 'fp32', '--out', %r])\n"
            "except SystemExit as e:\n    print('exit', e.code)\nprint('env', os.environ.get('TF_ENABLE_ONEDNN_OPTS'))\n"
            % (str(idx_dir), str(tmp_path / "run"))) + MKL
    done = run_python(code, tmp_path, "epyc_avx2")
    assert "exit 0" in done.stdout, done.stderr
    assert "env 1" in done.stdout and "onednn True" in done.stdout
    said = [line for line in done.stderr.splitlines() if "TF_ENABLE_ONEDNN_OPTS" in line]
    assert len(said) == 1 and said[0].startswith("kerascnn: TF_ENABLE_ONEDNN_OPTS=1") and "AMD EPYC 7B12" in said[0]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["cpu"] == {"model": "AMD EPYC 7B12", "arch": platform.machine(), "flags": ["avx", "avx2"],
                              "kernels": "onednn", "set_by": "kerascnn"}


def test_the_users_zero_reaches_tensorflow_and_nothing_is_said(tmp_path):
    code = ("import os\nfrom cli.common import quiet_tensorflow\nquiet_tensorflow()\n"
            "print('env', os.environ.get('TF_ENABLE_ONEDNN_OPTS'))\n") + MKL
    done = run_python(code, tmp_path, "epyc_avx2", TF_ENABLE_ONEDNN_OPTS="0")
    assert done.returncode == 0, done.stderr
    assert "env 0" in done.stdout and "onednn False" in done.stdout
    assert "TF_ENABLE_ONEDNN_OPTS" not in done.stderr
