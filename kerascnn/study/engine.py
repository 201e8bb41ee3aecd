"""Where a study's independent runs run: Ray (a local instance started on demand, or a cluster's
address), or, without Ray, a `concurrent.futures.ProcessPoolExecutor` of N 'spawn' workers.

    with Pool(jobs=2) as pool:            # address="auto" / "ray://head:10001": a Ray cluster
        print(pool.description)            # "on Ray (2 CPUs, a local instance; 2 runs at a time, 1 CPU each)"
        results = pool.map(tasks, work, progress)

`tasks` are (label, payload) pairs; `work(payload, notify)` is a module-level function (payloads
and results are pickled) that sends progress lines to `notify`; they reach `progress` as they come.

What each engine does for us, so that nothing here is a scheduler of our own:
- Ray places each run where `num_cpus` = cores / jobs (and `num_gpus` = GPUs / jobs) are free, on
  any machine of the cluster; `max_calls=1` gives every run a fresh worker process, so that its
  TensorFlow thread counts (TF_NUM_INTRAOP_THREADS, set before TensorFlow starts) are its own.
  Lines travel through a `ray.util.queue.Queue`.
- The executor keeps N spawned workers busy; its initializer sets the same thread counts and hands
  each worker the queue its lines go through. A killed worker breaks the pool (BrokenProcessPool).

What stays here: one retry policy for both (a run whose worker process died starts again, at most
`retries` times, with a line saying so; a run resumes from its own folder, e.g. training from its
last finished epoch), one line per failing run (a UserError naming its label, never a traceback),
and Ctrl-C (the running workers stop as a run stops on Ctrl-C, their clean-up done, within
STOP_SECONDS or are killed; Interrupted, exit 130, is raised).

The Ray side lives in kerascnn.study.on_ray; what runs inside a worker, in kerascnn.study.workers.

Threads: each run gets cores // jobs intra-op threads and one inter-op thread. Training results
depend on the intra-op thread count only through the order of floating-point sums (measured: a
31-step MNIST run, 1 against 2 threads, weights apart by 3e-7 in fp32 and 6e-5 in bf16, the same
test accuracy); the same thread count repeats a run bit for bit.
"""
from __future__ import annotations

import importlib.util
from typing import Callable, Sequence

from kerascnn.errors import BadValue, UserError
from kerascnn.study import on_ray
from kerascnn.study.workers import Interrupted, Outcome, call, local_cores, start_worker

ENGINES = ("auto", "ray", "processes")
#: How many times a run whose worker process died is started again before the study gives up.
RETRIES = 2
#: How long a worker told to stop (Ctrl-C) has to clean up before it is killed.
STOP_SECONDS = 20
_CLUSTER_HINT = 'pip install -e ".[cluster]"'


def ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """Intra-op threads for each of `jobs` runs at a time: the cores shared out, at least one."""
    return max(1, (local_cores() if cores is None else cores) // jobs)


def check(jobs: int, address: str | None, engine: str) -> str:
    """The engine that will run: 'ray' or 'processes' ('serial' for one job here). BadValue names the
    option at fault: an unknown engine, an address without Ray, Ray asked for and not installed."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BadValue("jobs", f"must be at least 1, got {jobs!r}")
    if engine not in ENGINES:
        raise BadValue("engine", f"choose from {', '.join(ENGINES)}, got {engine!r}")
    if address is not None and not str(address).strip():
        raise BadValue("address", "is empty: give auto, HOST:PORT or ray://HOST:PORT")
    if address is not None and engine == "processes":
        raise BadValue("address", "is a Ray cluster's: it needs --engine ray or auto")
    if (address is not None or engine == "ray") and not ray_installed():
        raise BadValue("address" if address is not None else "engine",
                       f"needs Ray, which is not installed: {_CLUSTER_HINT}")
    if address is not None:
        return "ray"
    if jobs == 1:
        return "serial"
    if engine == "ray" or (engine == "auto" and ray_installed()):
        return "ray"
    return "processes"


class Pool:
    """Runs a study's runs: `map` them, read `description` for the line that names the engine.

    kind "serial" (one job, no address): the caller runs its runs itself, in this process; `map`
    still works (one after another, same retries and messages) but is never needed.
    """

    def __init__(self, jobs: int = 1, address: str | None = None, engine: str = "auto", retries: int = RETRIES):
        self.kind = check(jobs, address, engine)
        self.jobs, self.address, self.retries = jobs, address, retries
        self.ray_started = False    # a local instance we started (and shut down on close)
        self.stop_seconds = STOP_SECONDS  # how long a worker told to stop may clean up

    # ------------------------------------------------------------------ what the user is told
    @property
    def parallel(self) -> bool:
        return self.kind != "serial"

    @property
    def description(self) -> str:
        if self.kind == "serial":
            return "one run after another in this process"
        if self.kind == "processes":
            threads = threads_per_job(self.jobs)
            hint = "" if ray_installed() else f"; without Ray ({_CLUSTER_HINT} for clusters)"
            return f"in {self.jobs} local processes ({threads} thread{'s' * (threads > 1)} each{hint})"
        if self.address is None:
            cores = local_cores()
            per = threads_per_job(self.jobs, cores)
            return f"on Ray ({cores} CPUs, a local instance; {self.jobs} runs at a time, {per} CPU{'s' * (per > 1)} each)"
        on_ray.start(self)  # a cluster's size is known once connected
        import ray

        resources = ray.cluster_resources()
        cpus, gpus, machines = int(resources.get("CPU", 0)), resources.get("GPU", 0), len(ray.nodes())
        per_cpu, per_gpu = on_ray.resources(self)
        gpu_words = f", {gpus:g} GPUs" if gpus else ""
        each = f"{per_cpu} CPU{'s' * (per_cpu > 1)}" + (f" and {per_gpu:g} GPU" if per_gpu else "")
        return (f"on Ray ({cpus} CPUs{gpu_words} on {machines} machine{'s' * (machines > 1)} at {self.address}; "
                f"{self.jobs} run{'s' * (self.jobs > 1)} at a time, {each} each)")

    # ------------------------------------------------------------------ running
    def map(self, tasks: Sequence[tuple[str, object]], work: Callable, progress: Callable[[str], None] = print,
            tensorflow: bool = True) -> list:
        """[work(payload, notify) for each (label, payload)], in the order of `tasks`. A failing run raises
        UserError naming its label (one line); a worker that died is retried (at most `retries` times,
        with a line each), then reported; Ctrl-C ends the workers and raises Interrupted.
        tensorflow=False: the work does not use TensorFlow (its quiet start-up is skipped)."""
        if not tasks:
            return []
        if self.kind == "serial":
            return [self.checked(label, call(work, payload, progress)) for label, payload in tasks]
        if self.kind == "processes":
            return self._map_processes(list(tasks), work, progress, tensorflow)
        return on_ray.map_tasks(self, list(tasks), work, progress, tensorflow)

    def close(self) -> None:
        if self.ray_started:
            import ray

            ray.shutdown()
            self.ray_started = False

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @staticmethod
    def checked(label: str, outcome: Outcome):
        if outcome.error is not None:
            raise UserError(f"{label}: {outcome.error}")
        return outcome.value

    def retry_line(self, labels: list[str], attempt: int, why: str) -> str:
        runs = labels[0] if len(labels) == 1 else f"{len(labels)} runs ({', '.join(labels)})"
        return (f"{runs}: {why}; starting again from what was saved (attempt {attempt} of {self.retries + 1})")

    # ------------------------------------------------------------------ processes
    def _map_processes(self, tasks, work, progress, tensorflow) -> list:
        import concurrent.futures as futures
        import multiprocessing
        import queue
        from concurrent.futures.process import BrokenProcessPool

        context = multiprocessing.get_context("spawn")
        lines = context.Queue()
        threads = threads_per_job(self.jobs)
        results: dict[int, object] = {}
        attempt = 1

        def drain():
            while True:
                try:
                    progress(lines.get_nowait())
                except queue.Empty:
                    return

        while True:
            todo = [i for i in range(len(tasks)) if i not in results]
            before = set(multiprocessing.active_children())
            executor = futures.ProcessPoolExecutor(max_workers=min(self.jobs, len(todo)), mp_context=context,
                                                   initializer=start_worker, initargs=(threads, lines, tensorflow))
            running = {}
            try:
                running.update({executor.submit(call, work, tasks[i][1], None): i for i in todo})
                while running:
                    done, _ = futures.wait(running, timeout=0.2, return_when=futures.FIRST_COMPLETED)
                    drain()
                    for future in done:
                        index = running.pop(future)
                        results[index] = self.checked(tasks[index][0], future.result())
                executor.shutdown(wait=True)
                drain()
                return [results[i] for i in range(len(tasks))]
            except BrokenProcessPool:
                drain()
                left = [tasks[i][0] for i in range(len(tasks)) if i not in results]
                if attempt > self.retries:
                    raise UserError(f"{left[0]}: its worker process ended before the run finished, "
                                    f"{attempt} times; run the same command again to resume") from None
                attempt += 1
                progress(self.retry_line(left, attempt, "a worker process ended"))
            except KeyboardInterrupt:
                raise Interrupted() from None
            finally:
                workers = set(multiprocessing.active_children()) - before
                for process in workers:
                    process.terminate()  # now, not after the running runs: SIGTERM stops a run cleanly
                for process in workers:  # (kerascnn.study.workers._stop); one that does not, is killed
                    process.join(self.stop_seconds)
                    if process.is_alive():
                        process.kill()
                executor.shutdown(wait=True, cancel_futures=True)
