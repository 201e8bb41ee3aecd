"""A study's runs as Ray tasks (kerascnn.study.engine's Pool with Ray): a local instance started on
demand, or a cluster's address. Ray places each run where its CPUs (and GPU share) are free, on any
machine; `max_calls=1` gives every run a fresh worker process, whose TensorFlow threads are then set
before TensorFlow starts; lines travel through a `ray.util.queue.Queue`. Ray's own retries are off
(max_retries=0): the pool's one retry policy says each retry in a line."""
from __future__ import annotations

import os
import sys

from kerascnn.errors import UserError
from kerascnn.study.workers import Interrupted, first_line, local_cores, ray_error, ray_run


def start(pool) -> None:
    """Connects to the pool's address, or starts a local instance (shut down by pool.close()); a Ray
    already started in this process is used as it is."""
    import logging

    import ray

    if pool.address is not None:
        probe(pool.address)  # even with Ray already up in this process: the address given must answer
    if ray.is_initialized():
        return
    try:
        if pool.address is None:
            # the workers import what this process imports, from where it does (as spawn's do)
            paths = os.pathsep.join(p for p in sys.path if p)
            ray.init(num_cpus=local_cores(), include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR, runtime_env={"env_vars": {"PYTHONPATH": paths}})
        else:
            ray.init(address=pool.address, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        where = "start a local Ray instance" if pool.address is None else f"reach Ray at {pool.address}"
        raise UserError(f"cannot {where}: {first_line(e)}") from None
    pool.ray_started = True


#: How long the address of a cluster may take to accept a connection.
CONNECT_SECONDS = 10


def probe(address: str) -> None:
    """UserError at once when HOST:PORT (or ray://HOST:PORT) accepts no connection: ray.init itself
    retries an unreachable head for about 13 minutes (measured) before it gives up. "auto" is left to
    Ray, which fails at once when no cluster was started on this machine."""
    import socket

    where = address.removeprefix("ray://")
    host, colon, port = where.rpartition(":")
    if address == "auto" or not colon or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as e:
        raise UserError(f"cannot reach Ray at {address}: {e.strerror or e} (is `ray start --head` running there, "
                        f"and the port open?)") from None


def resources(pool) -> tuple[int, float]:
    """(CPUs, GPUs) each run asks of Ray: the cluster's shared out by jobs, no more than the largest
    machine holds (a run uses one machine)."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive", True)]
    total = sum(n.get("CPU", 0) for n in nodes)
    largest = max((n.get("CPU", 0) for n in nodes), default=1)
    cpus = int(max(1, min(total // pool.jobs, largest)))
    gpus = sum(n.get("GPU", 0) for n in nodes)
    return cpus, (min(1.0, gpus / pool.jobs) if gpus else 0.0)


def map_tasks(pool, tasks, work, progress, tensorflow) -> list:
    """Pool.map on Ray: every run a task; a dead worker's run is submitted again (pool.retries)."""
    import ray
    from ray.util.queue import Empty, Queue

    start(pool)
    cpus, gpus = resources(pool)
    lines = Queue(actor_options={"num_cpus": 0})
    remote = ray.remote(max_calls=1, max_retries=0)(ray_run).options(num_cpus=cpus, num_gpus=gpus)
    attempts = dict.fromkeys(range(len(tasks)), 1)
    pending = {remote.remote(work, tasks[i][1], lines, cpus, tensorflow): i for i in range(len(tasks))}
    results: dict[int, object] = {}

    def drain():
        while True:
            try:
                batch = lines.get_nowait_batch(max(1, lines.qsize()))
            except Empty:
                return
            for line in batch:
                progress(line)
            if not batch:
                return

    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            drain()
            for ref in ready:
                index = pending.pop(ref)
                label = tasks[index][0]
                try:
                    outcome = ray.get(ref)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.LocalRayletDiedError, ray.exceptions.ObjectLostError) as e:
                    if attempts[index] > pool.retries:
                        raise UserError(f"{label}: its Ray worker died before the run finished "
                                        f"({type(e).__name__}), {attempts[index]} times; run the same "
                                        f"command again to resume") from None
                    attempts[index] += 1
                    progress(pool.retry_line([label], attempts[index], "its Ray worker died"))
                    pending[remote.remote(work, tasks[index][1], lines, cpus, tensorflow)] = index
                    continue
                except ray.exceptions.RayError as e:
                    raise UserError(f"{label}: Ray could not run it: {ray_error(e)}") from None
                results[index] = pool.checked(label, outcome)
        drain()
    except KeyboardInterrupt:
        raise Interrupted() from None
    finally:
        if pending:  # a failure or Ctrl-C: nothing of this study keeps running
            _stop(list(pending), pool)
        ray.kill(lines.actor)
    return [results[i] for i in range(len(tasks))]


def _stop(refs: list, pool) -> None:
    """Ends running tasks as Ctrl-C ends a run in a terminal (a KeyboardInterrupt in the task: its
    clean-up runs, no checkpoint is left half-written); those still running after pool.stop_seconds are
    killed."""
    import ray

    for ref in refs:
        ray.cancel(ref)
    _, running = ray.wait(refs, num_returns=len(refs), timeout=pool.stop_seconds)
    for ref in running:
        ray.cancel(ref, force=True)
