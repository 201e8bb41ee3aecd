"""Work functions for tests/test_engine.py: module-level (workers import them), no TensorFlow."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from kerascnn.errors import UserError


def square(payload, notify):
    notify(f"squaring {payload}")
    return payload * payload, os.environ.get("TF_NUM_INTRAOP_THREADS")


def fail(payload, notify):
    if payload == "user":
        raise UserError("no such model: m.keras")
    if payload == "bug":
        raise ZeroDivisionError("division by zero")
    return payload


def die_once(payload, notify):
    """Kills its own process the first time (a marker file says so); the retry returns."""
    marker = Path(payload)
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


def always_die(payload, notify):
    os.kill(os.getpid(), signal.SIGKILL)


def sleep(payload, notify):
    notify("sleeping")
    Path(payload).write_text(str(os.getpid()))
    time.sleep(60)
    return "woke"
