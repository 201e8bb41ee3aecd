"""Long requests (PGD, APGD, the smallest perturbation, a curve along eps) as jobs: started by a
POST, followed by GET /api/jobs/{id} (state, progress 0-1, result), cancelled by DELETE.

At most `MAX_JOBS` run or wait at once; one more is refused (429). A job is a list of steps (plain
functions); progress is the share of steps done, and a cancel takes effect between steps (a step
that has started finishes, and its result is dropped). Finished jobs are kept for `KEEP_S` seconds.
"""
from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kerascnn.serve.codec import RequestError

MAX_JOBS = 3
WORKERS = 2
KEEP_S = 300
KEEP_DONE = 50


class Job:
    def __init__(self, job_id: str, kind: str, steps: list, finish):
        self.id, self.kind, self.steps, self.finish = job_id, kind, steps, finish
        self.state, self.done, self.result, self.error = "queued", 0, None, None
        self.cancelled = threading.Event()
        self.started = time.monotonic()
        self.ended: float | None = None

    def to_dict(self) -> dict:
        out = {"id": self.id, "kind": self.kind, "state": self.state,
               "progress": self.done / max(1, len(self.steps)), "steps": len(self.steps), "steps_done": self.done,
               "seconds": round((self.ended or time.monotonic()) - self.started, 3)}
        if self.result is not None:
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        return out

    def run(self) -> None:
        from kerascnn.errors import UserError

        if self.cancelled.is_set():  # cancelled while it waited
            return
        self.state = "running"
        parts = []
        try:
            for step in self.steps:
                if self.cancelled.is_set():
                    break
                parts.append(step())
                self.done += 1
            if self.cancelled.is_set():
                self.state = "cancelled"
            else:
                self.result, self.state = self.finish(parts), "done"
        except (RequestError, UserError) as e:
            self.error, self.state = str(e)[:300], "failed"
        except Exception as e:  # noqa: BLE001 - a bug in a job must not take the server down; the page says it
            self.error, self.state = f"{type(e).__name__}: {str(e)[:300]}", "failed"
        finally:
            self.ended = time.monotonic()


class Jobs:
    """The running and recent jobs, on a small pool of threads."""

    def __init__(self, max_jobs: int = MAX_JOBS, workers: int = WORKERS):
        self.max_jobs = max_jobs
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kerascnn-serve-job")
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.ids = itertools.count(1)

    def start(self, kind: str, steps: list, finish) -> Job:
        with self.lock:
            self._forget()
            active = sum(j.state in ("queued", "running") for j in self.jobs.values())
            if active >= self.max_jobs:
                raise RequestError(f"{active} long jobs are running already (at most {self.max_jobs}): "
                                   f"wait for one to finish or cancel one", 429)
            job = Job(f"j{next(self.ids)}", kind, steps, finish)
            self.jobs[job.id] = job
        self.pool.submit(job.run)
        return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise RequestError(f"no job {job_id[:40]!r} (finished jobs are kept {KEEP_S} s)", 404)
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        job.cancelled.set()
        if job.state == "queued":
            job.state, job.ended = "cancelled", time.monotonic()
        return job

    def _forget(self) -> None:
        now = time.monotonic()
        done = [j for j in self.jobs.values() if j.ended is not None]
        old = {j.id for j in done if now - j.ended > KEEP_S}
        old |= {j.id for j in sorted(done, key=lambda j: j.ended)[:max(0, len(done) - KEEP_DONE)]}
        for job_id in old:
            self.jobs.pop(job_id, None)

    def shutdown(self) -> None:
        for job in list(self.jobs.values()):
            job.cancelled.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
