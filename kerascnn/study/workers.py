"""What runs inside a study's worker processes (kerascnn.study.engine, kerascnn.study.on_ray): the
thread counts set before TensorFlow starts, TensorFlow's quiet start, one run with its error reduced
to one line. Each worker chooses its CPU kernels (kerascnn.cpu) before TensorFlow starts in it,
silently: the parent process has said its line."""
from __future__ import annotations

import os
import signal
import sys
import traceback
from dataclasses import dataclass
from typing import Callable

from kerascnn.cpu import choose_kernels
from kerascnn.errors import UserError
from kerascnn.training.precision import share_gpus


class Interrupted(UserError):
    """Ctrl-C while workers ran: they are stopped; the same command reuses finished runs and resumes the others."""

    exit_code = 130

    def __init__(self):
        super().__init__("interrupted (Ctrl-C); run the same command again: finished runs are reused and "
                         "unfinished ones resume from where they stopped")


def local_cores() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class Outcome:
    """What a worker sends back for one run: its result, or the one line of its error."""
    value: object = None
    error: str | None = None


_LINES = None  # the queue a worker process's lines go through (set by start_worker)


def _thread_env(threads: int) -> dict:
    return {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(threads),
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


def start_worker(threads: int, lines, tensorflow: bool) -> None:
    """A spawned worker, before its first run: Ctrl-C is the parent's to handle; threads as shared out."""
    global _LINES
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent hears Ctrl-C and ends the workers
    signal.signal(signal.SIGTERM, _stop)          # ... with SIGTERM: see _stop
    sys.unraisablehook = _redeliver
    os.environ.update(_thread_env(threads))
    choose_kernels()  # before any run imports TensorFlow here
    _LINES = lines
    if tensorflow:
        start_tensorflow_quietly()


def call(work: Callable, payload, notify: Callable | None) -> Outcome:
    """work(payload, notify) -> Outcome, its error reduced to one line (a project error's own text; a
    bug's last line). notify None: lines go to the worker's queue."""
    if notify is None:
        notify = _LINES.put
    try:
        return Outcome(work(payload, notify))
    except UserError as e:
        return Outcome(error=str(e))
    except Exception as e:  # noqa: BLE001  (a bug: its last line is still one line for the user)
        return Outcome(error=traceback.format_exception_only(e)[-1].strip())
    finally:
        if _STOPPING:  # the run's own clean-up has run (its finally blocks): now the process ends
            os._exit(143)


_STOPPING = False


def _stop(signum, frame) -> None:
    """SIGTERM from the parent (Ctrl-C there): stop the run as Ctrl-C stops a run in a terminal, so
    that its clean-up runs (a checkpoint being written is removed, never left half-written; a bare
    SIGTERM left `.checkpoint-epoch2.keras.*.tmp.keras` behind), then `call` ends the process
    rather than let the executor hand it another run."""
    global _STOPPING
    _STOPPING = True
    raise KeyboardInterrupt


def _redeliver(info) -> None:
    """sys.unraisablehook of a worker: _stop's KeyboardInterrupt raised while the interpreter ran a
    callback (a weakref's, during garbage collection) is swallowed there, and Python would print
    "Exception ignored ... Traceback" on the user's terminal while the run went on. Instead the
    SIGTERM is sent again, from a timer thread a moment later: sent from here, its handler ran at once,
    inside this hook, and Python printed that traceback anyway ("Exception ignored in
    sys.unraisablehook", 1 of 1,476 tests in CI). Landing in another callback repeats this, until it
    lands where it can stop the run."""
    if _STOPPING and isinstance(info.exc_value, KeyboardInterrupt):
        import threading

        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return
    sys.__unraisablehook__(info)


def ray_run(work: Callable, payload, lines, threads: int, tensorflow: bool) -> Outcome:
    """One run as a Ray task, in a fresh worker process (max_calls=1): TensorFlow has not started there,
    so the thread counts set now are the ones it takes. (The work's own module, unpickled before this
    runs, imports no TensorFlow: the project keeps TensorFlow lazy.)"""
    os.environ.update(_thread_env(threads))
    choose_kernels()  # before the work imports TensorFlow here
    if tensorflow:
        start_tensorflow_quietly()
    return call(work, payload, lines.put)


def start_tensorflow_quietly() -> None:
    """Imports TensorFlow with its start-up lines off stderr (as the CLI does); its thread counts come
    from TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS, set before; its CPU kernels from
    kerascnn.cpu (chosen once per process: a no-op when start_worker or ray_run already chose)."""
    choose_kernels()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    os.dup2(devnull, 2)
    try:
        import keras  # noqa: F401  (its start-up is chatty too)

        share_gpus()  # the runs at a time share a GPU's memory
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def ray_error(error: BaseException) -> str:
    """A RayError's own cause in one line (its text starts with Ray's coloured task name)."""
    cause = getattr(error, "cause", None)
    if cause is not None:
        return first_line(traceback.format_exception_only(cause)[-1])
    lines = [line for line in str(error).splitlines() if line.strip() and "ray::" not in line]
    return lines[-1].strip() if lines else type(error).__name__
