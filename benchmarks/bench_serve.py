"""Speed of `kerascnn serve`'s requests, server-side: each request goes through the ASGI app in this
process (Starlette's TestClient: JSON parsing, the worker thread, the library call, PNG encoding),
after the models were built and warmed as `kerascnn serve` builds them.

    python benchmarks/bench_serve.py                          # the issue's table, 200 requests each
    python benchmarks/bench_serve.py --count 20 --no-mobilenet  # a quick check that it runs
    python benchmarks/bench_serve.py --out benchmarks/results/serve_amd_dec6.jsonl

Prints (and with --out writes) one JSON line per request kind: median, p95 and max in milliseconds,
against the issue's goal. The first line records the host (benchmarks/hosts.py). The figures depend on
what else the machine is doing.

    predict + every activation map   POST /api/activations {"layer": "all"}: probabilities and every
                                     channel of every spatial layer as PNGs     goal 50 ms
    saliency, Grad-CAM               POST /api/explain                           goal 100 ms
    FGSM at a new eps                POST /api/attack, a different eps each time  goal 100 ms
    SmoothGrad, IG, occlusion        POST /api/explain                           goal 1 s
    PGD-40                           POST /api/attack, then GET /api/jobs/{id} until done  goal 2 s
    MobileNetV2 224 px predict       POST /api/predict (random weights: speed does not depend on them)
                                     by index, and from a 224 px PNG              goal 300 ms
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosts import machine  # noqa: E402

GOALS_MS = {"predict + every activation map": 50, "saliency": 100, "gradcam": 100, "fgsm at a new eps": 100,
            "smoothgrad": 1000, "integrated_gradients": 1000, "occlusion": 1000, "pgd-40": 2000,
            "mobilenetv2 predict (index)": 300, "mobilenetv2 predict (png)": 300}


def timed(client, count: int, request) -> list[float]:
    """Milliseconds of `count` calls of request(client, k), each checked to succeed."""
    times = []
    for k in range(count):
        start = time.perf_counter()
        response = request(client, k)
        times.append(1000 * (time.perf_counter() - start))
        assert response.status_code in (200, 202), response.text
    return times


def record(name: str, times: list[float], extra: dict | None = None) -> dict:
    values = np.asarray(times)
    goal = GOALS_MS.get(name)
    out = {"kind": "request", "request": name, "count": len(values), "median_ms": round(float(np.median(values)), 2),
           "p95_ms": round(float(np.percentile(values, 95)), 2), "max_ms": round(float(values.max()), 2),
           "goal_ms": goal, "meets_goal": None if goal is None else bool(np.percentile(values, 95) <= goal)}
    return out | (extra or {})


def pgd(client, k):
    response = client.post("/api/attack", json={"index": k % 100, "attack": "pgd", "eps": 0.3, "steps": 40})
    job = response.json()
    while job["state"] in ("queued", "running"):
        time.sleep(0.002)
        job = client.get(f"/api/jobs/{job['id']}").json()
    assert job["state"] == "done", job
    return response


def cnn_rows(count: int) -> list[dict]:
    from starlette.testclient import TestClient

    from kerascnn.serve import build, create_app

    start = time.perf_counter()
    server = build([None])
    built = round(time.perf_counter() - start, 1)
    client = TestClient(create_app(server))
    rng = np.random.default_rng(0)
    rows = [{"kind": "start", "model": "cnn", "dataset": "mnist", "build_and_warm_s": built}]
    kinds = {
        "predict + every activation map": lambda c, k: c.post("/api/activations", json={"index": k, "layer": "all"}),
        "fgsm at a new eps": lambda c, k: c.post("/api/attack", json={"index": k, "eps": float(rng.uniform(0, 0.3))}),
        "pgd-40": pgd,
    }
    for method in ("saliency", "gradcam", "smoothgrad", "integrated_gradients", "occlusion"):
        kinds[method] = lambda c, k, m=method: c.post("/api/explain", json={"index": k, "method": m})
    for name, request in kinds.items():
        request(client, 0)  # one unmeasured call: caches of the first request (none expected)
        rows.append(record(name, timed(client, count, request), {"model": "cnn"}))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def mobilenet_rows(count: int) -> list[dict]:
    import keras
    from PIL import Image
    from starlette.testclient import TestClient

    from kerascnn.serve import build, create_app

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 224, 224, 3)).astype(np.uint8)
    y = rng.integers(0, 10, 20)
    start = time.perf_counter()
    server = build([model], data=(x, y), preprocess="mobilenet_v2")
    built = round(time.perf_counter() - start, 1)
    client = TestClient(create_app(server))
    buffer = io.BytesIO()
    Image.fromarray(x[0]).save(buffer, format="PNG")
    picture = base64.b64encode(buffer.getvalue()).decode()
    rows = [{"kind": "start", "model": "MobileNetV2", "size": 224, "build_and_warm_s": built}]
    kinds = {"mobilenetv2 predict (index)": lambda c, k: c.post("/api/predict", json={"index": k % 20}),
             "mobilenetv2 predict (png)": lambda c, k: c.post("/api/predict", json={"image": picture})}
    for name, request in kinds.items():
        request(client, 0)
        rows.append(record(name, timed(client, count, request), {"model": "MobileNetV2"}))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="requests per kind")
    parser.add_argument("--no-mobilenet", action="store_true", help="skip the MobileNetV2 rows")
    parser.add_argument("--out", type=Path, default=None, help="also write the lines to this .jsonl file")
    args = parser.parse_args()
    rows = [{"kind": "machine", **machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}]
    print(json.dumps(rows[0]), flush=True)
    rows += cnn_rows(args.count)
    if not args.no_mobilenet:
        rows += mobilenet_rows(args.count)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        temporary = args.out.with_suffix(".tmp")
        temporary.write_text("".join(json.dumps(r) + "\n" for r in rows))
        temporary.replace(args.out)


if __name__ == "__main__":
    main()
