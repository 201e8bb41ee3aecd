"""kerascnn.study.engine: Ray and the process pool run a study's runs the same way (order, lines,
threads, retries, one-line errors), and Ctrl-C on a real study exits 130 with nothing half-written."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kerascnn.errors import BadValue, UserError
from kerascnn.study import engine
from kerascnn.study.engine import Pool, local_cores, threads_per_job
from tests import engine_work as work

ENGINES = ["processes", "ray"]


@pytest.fixture(scope="module")
def pools():
    """One pool per engine for the module (a local Ray instance takes seconds to start)."""
    made = {name: Pool(2, engine=name) for name in ENGINES}
    yield made
    for pool in made.values():
        pool.close()


@pytest.mark.parametrize("name", ENGINES)
def test_results_come_back_in_order_with_lines_and_shared_out_threads(pools, name):
    lines = []
    results = pools[name].map([(f"run {i}", i) for i in range(5)], work.square, lines.append, tensorflow=False)
    assert [r[0] for r in results] == [i * i for i in range(5)]
    assert {r[1] for r in results} == {str(threads_per_job(2))}  # each run's TensorFlow threads: cores // jobs
    assert sorted(lines) == [f"squaring {i}" for i in range(5)]


@pytest.mark.parametrize("name", ENGINES)
def test_a_failing_run_is_one_line_naming_it(pools, name):
    with pytest.raises(UserError, match=r"^second: no such model: m\.keras$"):
        pools[name].map([("first", 2), ("second", "user")], work.fail, tensorflow=False)
    with pytest.raises(UserError, match=r"^bug: ZeroDivisionError: division by zero$"):
        pools[name].map([("fine", 1), ("bug", "bug")], work.fail, tensorflow=False)


@pytest.mark.parametrize("name", ENGINES)
def test_a_killed_worker_is_retried_then_reported(pools, name, tmp_path):
    (tmp_path / "done").write_text("")
    lines = []
    assert pools[name].map([("dies once", str(tmp_path / "marker")), ("fine", str(tmp_path / "done"))],
                           work.die_once, lines.append, tensorflow=False) == ["survived", "survived"]
    assert any(line.endswith("starting again from what was saved (attempt 2 of 3)") and "dies once" in line
               for line in lines), lines
    lines.clear()
    with pytest.raises(UserError, match=r"^always: its (Ray )?worker( process)? (died|ended) before the run "
                                        r"finished.*3 times; run the same command again to resume$"):
        pools[name].map([("always", "x")], work.always_die, lines.append, tensorflow=False)
    assert [line.split(": ")[0] for line in lines] == ["always", "always"]  # two retries, each said


def test_without_ray_the_process_pool_runs_and_a_cluster_is_refused(monkeypatch):
    monkeypatch.setattr(engine, "ray_installed", lambda: False)
    assert engine.check(2, None, "auto") == "processes"
    assert engine.check(1, None, "auto") == "serial"
    assert "pip install -e \".[cluster]\"" in Pool(2).description
    with pytest.raises(BadValue, match=r"^address: needs Ray, which is not installed"):
        engine.check(2, "auto", "auto")
    with pytest.raises(BadValue, match=r"^engine: needs Ray"):
        engine.check(2, None, "ray")
    monkeypatch.setattr(engine, "ray_installed", lambda: True)
    assert engine.check(2, None, "auto") == "ray" and engine.check(1, "auto", "auto") == "ray"
    assert engine.check(2, None, "processes") == "processes"
    with pytest.raises(BadValue, match=r"^address: is a Ray cluster's"):
        engine.check(2, "auto", "processes")
    with pytest.raises(BadValue, match=r"^engine: choose from auto, ray, processes"):
        engine.check(2, None, "slurm")
    with pytest.raises(BadValue, match=r"^jobs: "):
        engine.check(0, None, "auto")


def test_serial_pool_runs_here_and_says_so():
    pool = Pool(1)
    assert not pool.parallel and pool.description == "one run after another in this process"
    lines = []
    assert pool.map([("a", 3)], work.square, lines.append)[0][0] == 9 and lines == ["squaring 3"]


def test_threads_are_the_cores_shared_out():
    assert threads_per_job(2, 2) == 1 and threads_per_job(3, 2) == 1 and threads_per_job(2, 16) == 8
    assert 1 <= threads_per_job(1) == local_cores()


# ---------------------------------------------------------------------------- Ctrl-C on a real study
@pytest.mark.parametrize("name", ENGINES)
def test_ctrl_c_exits_130_leaves_nothing_half_written_and_the_study_resumes(tmp_path, idx_dir, name):
    out = tmp_path / "study"
    args = [sys.executable, "-c", "from cli.main import cli; cli(prog_name='kerascnn')", "compare", "--seeds", "1", "--epochs", "3", "--batch-size", "20",
            "--subset", "300", "--val-size", "20", "--precision", "fp32", "--data-dir", str(idx_dir), "--jobs", "2",
            "--engine", name, "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]), *sys.path]))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=tmp_path, start_new_session=True)
    seen = []
    deadline = time.monotonic() + 240
    for line in process.stdout:  # Ctrl-C once a run has finished its first epoch
        seen.append(line)
        if ": epoch 1/3" in line or time.monotonic() > deadline:
            break
    os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole foreground group
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(seen) + stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error")]
    assert errors == ["Error: interrupted (Ctrl-C); run the same command again: finished runs are reused and "
                      "unfinished ones resume from where they stopped"], stderr
    assert "Traceback" not in stderr
    # (an ended worker's .lock file may stay: the kernel dropped its flock, and the rerun takes it)
    leftovers = [p for p in out.rglob("*") if ".tmp" in p.name or ".partial" in p.name]
    assert not leftovers and not (out / "result.json").exists()

    again = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resum" in again.stdout or "reused" in again.stdout, again.stdout  # what was done is kept
    assert (out / "result.json").is_file()


def test_an_unreachable_cluster_is_one_line_at_once_and_leaves_no_folder(tmp_path, idx_dir):
    """ray.init retries an unreachable head for minutes; the address is probed first (port 1: refused)."""
    from tests.support import cli

    out = tmp_path / "study"
    start = time.perf_counter()
    result = cli("compare", "--seeds", 1, "--epochs", 1, "--data-dir", idx_dir, "--address", "127.0.0.1:1",
                 "--out", out)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        "Error: cannot reach Ray at 127.0.0.1:1: Connection refused (is `ray start --head` running there, and the "
        "port open?)"], result.output
    assert time.perf_counter() - start < 60 and not out.exists()


def test_a_worker_s_stop_swallowed_by_a_callback_is_sent_again_not_printed(monkeypatch, capsys):
    """_stop's KeyboardInterrupt raised inside a weakref callback reaches sys.unraisablehook, which in
    a worker sends SIGTERM again (to stop the run at the next safe point) instead of printing a
    traceback; anything else still goes to Python's own hook."""
    import signal
    import types

    from kerascnn.study import workers

    heard = []
    previous = signal.signal(signal.SIGTERM, lambda *a: heard.append("SIGTERM"))
    try:
        monkeypatch.setattr(workers, "_STOPPING", True)
        workers._redeliver(types.SimpleNamespace(exc_value=KeyboardInterrupt(), exc_type=KeyboardInterrupt))
        signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a point where a pending handler runs
        assert heard == []  # not inside the hook, where its KeyboardInterrupt would be swallowed and printed
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            time.sleep(0.01)
        assert heard == ["SIGTERM"]
        seen = []
        monkeypatch.setattr(sys, "__unraisablehook__", seen.append)
        other = types.SimpleNamespace(exc_value=ValueError("x"), exc_type=ValueError)
        workers._redeliver(other)
        monkeypatch.setattr(workers, "_STOPPING", False)
        interrupt = types.SimpleNamespace(exc_value=KeyboardInterrupt(), exc_type=KeyboardInterrupt)
        workers._redeliver(interrupt)
        assert seen == [other, interrupt] and heard == ["SIGTERM"]
    finally:
        signal.signal(signal.SIGTERM, previous)
