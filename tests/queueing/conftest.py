from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection


def worker_env() -> dict[str, str]:
    """The environment for a worker subprocess: same Redis, the *test* database."""
    env = dict(os.environ)
    url = urlsplit(env["DATABASE_URL"])
    env["DATABASE_URL"] = urlunsplit(url._replace(path="/" + str(connection.settings_dict["NAME"])))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_worker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``manage.py rqworker ARGS`` to completion (use --burst or a limit)."""
    return subprocess.run(
        [sys.executable, "manage.py", "rqworker", *args],
        env=worker_env(),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_worker(*args: str) -> subprocess.Popen[str]:
    """A long-running worker; its output goes to a temp file (a pipe nobody
    reads would fill up and block it), printed by the ``workers`` fixture."""
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by the workers fixture
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", *args],
        env=worker_env(),
        cwd=settings.BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _logs[proc.pid] = log
    return proc


_logs: dict[int, Any] = {}


def wait_for(predicate: Callable[[], Any], timeout: float = 30, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    """Workers started by a test; killed at the end whatever happened."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        log = _logs.pop(proc.pid, None)
        if log is not None:
            log.seek(0)
            print(f"--- worker {proc.pid} (exit {proc.returncode}) ---\n{log.read()[-4000:]}")  # noqa: T201
            log.close()
