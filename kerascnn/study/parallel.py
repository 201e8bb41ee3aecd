"""Independent runs of a study in N worker processes, each with its share of the CPU cores.

Why processes of our own ('spawn' multiprocessing) rather than a ProcessPoolExecutor or subprocesses
of the CLI: a worker must set TensorFlow's thread counts before TensorFlow starts (a fresh 'spawn'
interpreter, never a fork of one that has it running); its progress lines must reach the parent
while it trains (one queue for lines and results); and on Ctrl-C the parent must be able to end
the workers at once (`terminate`, which the executor does not offer before Python 3.14). A training
run commits its state at each epoch's end, so a worker ended mid-epoch resumes on the next call.

Threads: each worker gets cores // N intra-op threads and one inter-op thread. Training results
depend on the intra-op thread count only through the order of floating-point sums (measured: a
31-step MNIST run, 1 against 2 threads, weights apart by 3e-7 in fp32 and 6e-5 in bf16, the same
test accuracy); the same thread count repeats a run bit for bit.
"""
from __future__ import annotations

import os
import queue
import signal
import traceback
from typing import Callable, Sequence

from kerascnn.errors import UserError


class Interrupted(UserError):
    """Ctrl-C while workers ran: they are ended; the same command reuses finished runs and resumes the others."""

    exit_code = 130

    def __init__(self):
        super().__init__("interrupted (Ctrl-C); run the same command again: finished runs are reused and "
                         "unfinished ones resume from their last finished epoch")


def threads_per_job(jobs: int) -> int:
    """Intra-op threads for each of `jobs` workers: this process's cores shared out, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // jobs)


def run(tasks: Sequence[tuple[str, object]], jobs: int, work: Callable, progress: Callable[[str], None]) -> list:
    """[work(payload, notify) for each (label, payload) in tasks], computed by `jobs` spawned worker
    processes (`work` must be a module-level function; payloads and results are pickled). Lines a
    worker sends to `notify` reach `progress` as they come. A failing run raises UserError naming
    its label (in one line); Ctrl-C ends the workers and raises Interrupted."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    inbox, outbox = context.Queue(), context.Queue()
    for index, (_, payload) in enumerate(tasks):
        inbox.put((index, payload))
    workers = [context.Process(target=_worker, args=(work, threads_per_job(jobs), inbox, outbox), daemon=True)
               for _ in range(min(jobs, len(tasks)))]
    for _ in workers:
        inbox.put(None)
    results: dict[int, object] = {}
    try:
        for worker in workers:
            worker.start()
        while len(results) < len(tasks):
            try:
                kind, index, value = outbox.get(timeout=0.5)
            except queue.Empty:
                dead = [w for w in workers if w.exitcode not in (None, 0)]
                if dead or not any(w.is_alive() for w in workers):
                    code = dead[0].exitcode if dead else 0
                    raise UserError(f"a worker process ended (exit status {code}) before its run finished; "
                                    f"run the same command again to resume") from None
                continue
            if kind == "line":
                progress(value)
            elif kind == "error":
                raise UserError(f"{tasks[index][0]}: {value}")
            else:
                results[index] = value
    except KeyboardInterrupt:
        raise Interrupted() from None
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            if worker.pid is not None:  # started
                worker.join(10)
    return [results[i] for i in range(len(tasks))]


def _worker(work: Callable, threads: int, inbox, outbox) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent hears Ctrl-C and ends the workers
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _start_tensorflow_quietly(threads)
    while (item := inbox.get()) is not None:
        index, payload = item
        try:
            outbox.put(("done", index, work(payload, lambda line, i=index: outbox.put(("line", i, line)))))
        except UserError as e:
            outbox.put(("error", index, str(e)))
        except Exception as e:  # noqa: BLE001  (a bug: its last line is still one line for the user)
            outbox.put(("error", index, traceback.format_exception_only(e)[-1].strip()))


def _start_tensorflow_quietly(threads: int) -> None:
    """Imports TensorFlow with its start-up lines off stderr (as the CLI does), then sets its threads."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    os.dup2(devnull, 2)
    try:
        import keras  # noqa: F401
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
