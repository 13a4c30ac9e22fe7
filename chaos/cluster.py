"""The real processes of one scenario: gunicorn, workers, relay, scheduler.

Every process runs ``manage.py`` (or gunicorn) against the test database and
this run's Redis, writes its output to ``artifacts/chaos/logs/<scenario>/``
(grepped for secrets at the end of the run), and is stopped when the scenario
ends, whatever happened.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from bench.loadgen import free_port

# python -m chaos picks the directory (artifacts/chaos unless another run holds it).
ARTIFACTS = Path(os.environ.get("CHAOS_ARTIFACTS") or Path(settings.BASE_DIR) / "artifacts" / "chaos")
LOG_ROOT = ARTIFACTS / "logs"


def wait_for(predicate: Callable[[], Any], timeout: float = 30, step: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.popen.send_signal(signum)

    def kill(self) -> int:
        self.signal(signal.SIGKILL)
        return self.popen.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


@dataclass
class Web:
    port: int
    proc: Proc

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, timeout: float = 30
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


@dataclass
class Cluster:
    scenario: str
    procs: list[Proc] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    concurrency: int = 1  # every worker's --concurrency (the scenarios run at 1 and at 8)

    def __post_init__(self) -> None:
        self.log_dir = LOG_ROOT / self.scenario
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a subprocess: this run's Redis, the *test* database."""
        env = dict(os.environ)
        url = urlsplit(env["DATABASE_URL"])
        env["DATABASE_URL"] = urlunsplit(url._replace(path="/" + str(connection.settings_dict["NAME"])))
        env.update(
            PYTHONUNBUFFERED="1",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            LOG_LEVEL="INFO",
            PAYMENT_WEBHOOK_SECRET=settings.PAYMENT_WEBHOOK_SECRET,
            STRIPE_WEBHOOK_SECRET=settings.STRIPE_WEBHOOK_SECRET,
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log_path = self.log_dir / f"{name}-{len(self.procs)}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed in stop_all
        popen = subprocess.Popen(
            argv, env=env or self.env(), cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT
        )
        proc = Proc(name=name, popen=popen, log_path=log_path, _log=log)
        self.procs.append(proc)
        return proc

    def manage(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        return self.spawn(name, [sys.executable, "manage.py", *args], env)

    def run(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None, fault: str = ""
    ) -> subprocess.CompletedProcess[str]:
        """``manage.py ARGS`` to completion, output captured (and logged); with
        ``fault``, under that fault (chaos/faults.py)."""
        entry = ["-m", "chaos.faults", fault] if fault else ["manage.py"]
        done = subprocess.run(
            [sys.executable, *entry, *args],
            env=env or self.env(),
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with open(self.log_dir / "commands.log", "a") as log:
            log.write(f"$ manage.py {' '.join(args)}  -> {done.returncode}\n{done.stdout}{done.stderr}\n")
        return done

    def worker(self, *queues: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Proc:
        threads = ("--concurrency", str(self.concurrency)) if self.concurrency > 1 else ()
        return self.manage("worker", "rqworker", *(queues or ("default",)), "--sleep", "1", *threads, *args, env=env)

    def relay(self) -> Proc:
        return self.manage("relay", "outbox_process", "--loop")

    def scheduler(self, *args: str) -> Proc:
        return self.manage("scheduler", "schedule_work", *args)

    def web(self, workers: int = 2) -> Web:
        """gunicorn as in production (sync workers, access log on); returns once /healthz answers."""
        port = free_port()
        proc = self.spawn(
            "web",
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--timeout", "60", "--access-logfile", "-"],
        )  # fmt: skip
        web = Web(port=port, proc=proc)

        def healthy() -> bool:
            if not proc.alive():
                raise AssertionError(f"gunicorn exited:\n{proc.output()[-3000:]}")
            try:
                return web.request("GET", "/healthz", timeout=2)[0] == 200
            except OSError:
                return False

        wait_for(healthy, timeout=60, step=0.2)
        return web

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
            proc._log.close()
