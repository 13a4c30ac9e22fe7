"""The embedded servers: started by a lone command, reused beside a holder,
stopped by the last holder. Runs in its own data dir, whatever the suite uses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from config import embedded


@pytest.fixture
def fresh_var(tmp_path: Path) -> Iterator[Path]:
    var = tmp_path / "var"
    yield var
    with embedded._locked(var):
        embedded.stop_services(var)


def _env(var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["VITO_VAR_DIR"] = str(var)
    return env


def _manage(var: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        env=_env(var),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _pg_pid(var: Path) -> int:
    return int((var / "pg" / "postmaster.pid").read_text().split()[0])


def test_a_lone_command_starts_the_servers_and_stops_them_after(fresh_var: Path) -> None:
    probe = (
        "from django.db import connection; import django_rq; "
        "print(connection.cursor().execute('select 41+1').fetchone()[0], django_rq.get_connection().ping())"
    )
    out = _manage(fresh_var, "shell", "-c", probe)
    assert out.splitlines()[-1].split() == ["42", "True"]
    assert (fresh_var / "pg" / "PG_VERSION").exists()
    assert (fresh_var / "redis").is_dir()
    state = embedded.status(fresh_var)
    assert state["postgres"] is False and state["redis"] is False and state["holders"] == []


def test_commands_reuse_servers_a_holder_keeps_running(fresh_var: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-m", "config.embedded", "exec", "--", sys.executable, "-c", "import sys; sys.stdin.read()"],
        env=_env(fresh_var),
        cwd=settings.BASE_DIR,
        stdin=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (embedded.status(fresh_var)["postgres"] and embedded.status(fresh_var)["redis"]):
            assert time.monotonic() < deadline, "embedded servers did not come up"
            time.sleep(0.2)
        pid = _pg_pid(fresh_var)
        _manage(fresh_var, "check", "--database", "default")
        # The lone command found the servers running and left them running.
        assert embedded.status(fresh_var)["postgres"] is True
        assert _pg_pid(fresh_var) == pid
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(timeout=120) == 0
    state = embedded.status(fresh_var)
    assert state["postgres"] is False and state["redis"] is False


def test_redis_keeps_queued_data_across_restarts(fresh_var: Path) -> None:
    import redis

    embedded.ensure_services(postgres=False, redis=True, var=fresh_var)
    client = redis.Redis.from_url(embedded.urls_for(fresh_var).redis_url)
    client.rpush("rq:queue:default", "job-1")
    client.close()
    embedded.release_services(fresh_var)
    assert embedded.status(fresh_var)["redis"] is False
    embedded.ensure_services(postgres=False, redis=True, var=fresh_var)
    client = redis.Redis.from_url(embedded.urls_for(fresh_var).redis_url)
    assert client.lrange("rq:queue:default", 0, -1) == [b"job-1"]
    client.close()
    embedded.release_services(fresh_var)
