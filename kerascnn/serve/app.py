"""The Starlette app: routes over the plain functions of views / attack_views, the page's static
files, and the rules every request meets.

    GET  /                      the page (static/index.html)
    GET  /api/models            the models served, their classes and layers
    GET  /api/images            test images by class, the misclassified, the least confident
    POST /api/thumbnails        small PNGs of test images
    POST /api/predict           probabilities               POST /api/activations  every layer's maps
    POST /api/explain           an attribution map          POST /api/kernel       a filter and its picture
    POST /api/attack            FGSM at once; PGD, APGD, minimal (and "curve") as a job
    POST /api/curve             the prediction along eps (FGSM)
    POST /api/corrupt           a corruption at a severity  POST /api/certify      randomized smoothing (a job)
    GET  /api/jobs/{id}         a job's state and result    DELETE /api/jobs/{id}  cancel it

Bodies are JSON objects of at most MAX_BODY bytes (413 otherwise); a malformed request is a 400 with
{"error": ...}; more than MAX_WAITING quick requests at once, or more than jobs.MAX_JOBS jobs, a 429.
Nothing in a request names a file or code: models and data are the ones given at start.
"""
from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kerascnn.serve import attack_views, views
from kerascnn.serve.codec import RequestError
from kerascnn.serve.jobs import Job, Jobs

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 6 * 1024 * 1024
#: Quick requests computing at once (the rest wait) and waiting at most; one more gets 429.
COMPUTING = 2
MAX_WAITING = 32


class Server:
    """What the app serves: the Served models (kerascnn.serve.served), the job pool, the limits."""

    def __init__(self, models: list, max_jobs: int | None = None):
        if not models:
            raise ValueError("serve at least one model")
        self.models = models
        self.jobs = Jobs() if max_jobs is None else Jobs(max_jobs)
        self.computing = threading.BoundedSemaphore(COMPUTING)
        self.waiting = 0
        self.count_lock = threading.Lock()

    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def compute(self, function, *args):
        """Runs function(*args) in this thread, at most COMPUTING at once (TensorFlow uses the cores)."""
        with self.computing:
            return function(*args)


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request) -> dict:
    """The request's JSON object, refused (413) past MAX_BODY bytes without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise RequestError(f"the request is larger than {MAX_BODY:,} bytes", 413 if declared.isdigit() else 400)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestError(f"the request is larger than {MAX_BODY:,} bytes", 413)
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except (ValueError, RecursionError):
        raise RequestError("the body is not JSON: send an object such as {\"index\": 0}") from None
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object, such as {\"index\": 0}")
    return body


def endpoint(function, *, body: bool = True):
    """A route handler: read the body (or the query), run `function(server, body)` in a worker
    thread, answer JSON; RequestError and kerascnn's BadValue/UserError become their status."""
    async def handle(request):
        from kerascnn.errors import BadValue, UserError

        server = request.app.state.server
        try:
            given = await read_body(request) if body else dict(request.query_params)
            with server.count_lock:
                if server.waiting >= MAX_WAITING:
                    raise RequestError(f"{MAX_WAITING} requests are waiting already: try again in a moment", 429)
                server.waiting += 1
            try:
                answer = await run_in_threadpool(server.compute, function, server, given)
            finally:
                with server.count_lock:
                    server.waiting -= 1
        except RequestError as e:
            return error(e.message, e.status)
        except BadValue as e:
            return error(f"{e.param}: {e.message}", 400)
        except UserError as e:
            return error(str(e), 400)
        if isinstance(answer, Job):
            return JSONResponse(answer.to_dict(), status_code=202)
        return JSONResponse(answer)
    return handle


def attack(server, body: dict):
    """FGSM answers at once; the other attacks start a job."""
    if body.get("attack", "fgsm") == "fgsm" and not body.get("curve"):
        return attack_views.fgsm(server, body)
    return attack_views.start_attack(server, body)


async def job_route(request):
    server = request.app.state.server
    try:
        job_id = request.path_params["job_id"]
        job = server.jobs.cancel(job_id) if request.method == "DELETE" else server.jobs.get(job_id)
    except RequestError as e:
        return error(e.message, e.status)
    return JSONResponse(job.to_dict())


async def models_route(request):
    return JSONResponse({"models": [m.describe() for m in request.app.state.server.models]})


async def page(request):
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def not_found(request, exc):
    return error(f"nothing at {request.url.path[:100]}", getattr(exc, "status_code", 404))


async def failed(request, exc):
    return error(f"the server failed on this request ({type(exc).__name__}); see the server's log", 500)


def create_app(server: Server, hosts: list[str] | None = None) -> Starlette:
    """The app serving `server`'s models; `hosts`: the Host headers it answers (None: any), so that a
    page bound to loopback cannot be reached through another name pointed at it (DNS rebinding)."""
    routes = [
        Route("/", page),
        Route("/api/models", models_route),
        Route("/api/images", endpoint(views.images, body=False)),
        Route("/api/thumbnails", endpoint(views.thumbnails), methods=["POST"]),
        Route("/api/predict", endpoint(views.predict), methods=["POST"]),
        Route("/api/activations", endpoint(views.activations), methods=["POST"]),
        Route("/api/explain", endpoint(views.explain), methods=["POST"]),
        Route("/api/kernel", endpoint(views.kernel), methods=["POST"]),
        Route("/api/attack", endpoint(attack), methods=["POST"]),
        Route("/api/curve", endpoint(attack_views.curve), methods=["POST"]),
        Route("/api/corrupt", endpoint(attack_views.corrupt), methods=["POST"]),
        Route("/api/certify", endpoint(attack_views.start_certify), methods=["POST"]),
        Route("/api/jobs/{job_id}", job_route, methods=["GET", "DELETE"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        server.jobs.shutdown()

    middleware = [] if hosts is None else [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, Exception: failed},
                    lifespan=lifespan, middleware=middleware)
    app.state.server = server
    return app
