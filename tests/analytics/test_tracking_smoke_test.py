"""The release checklist's tracking smoke test: a tracked redirect through HTTP
(a live server), into the Redis buffer, drained by a real worker into
PostgreSQL — and a clear failure when Redis, the drain or the database is broken."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from redis import Redis
from rq import Queue

from queueing import dispatch
from tenants import tracking
from tenants.models import Interaction, Tenant, TrackedLink
from tests.factories import TenantFactory
from tests.queueing.conftest import start_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    tracking.clear_caches()
    yield
    tracking.clear_caches()


def run(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("tracking_smoke_test", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_hit_goes_through_http_redis_and_a_worker_into_postgresql(
    live_server: Any, redis_conn: Redis, workers: list[subprocess.Popen[str]]
) -> None:
    workers.append(start_worker("default", "--sleep", "0.2"))
    status, output = run("--url", live_server.url, "--wait", "60")
    assert status == 0, output
    assert "redirected with its UTM parameters" in output and "(row deleted)" in output
    assert not Interaction.objects.exists()  # a smoke test is not a visitor

    assert run("--url", live_server.url, "--wait", "60")[0] == 0  # reuses its tenant and link
    assert Tenant.objects.filter(slug="smoke-test", status="approved").count() == 1
    assert TrackedLink.objects.filter(tenant__slug="smoke-test", code="smoke").count() == 1


def test_it_never_uses_a_real_tenant_that_has_its_slug(live_server: Any, redis_conn: Redis) -> None:
    TenantFactory.create(slug="smoke-test")
    status, output = run("--url", live_server.url)
    assert status == 1 and "belongs to a tenant that is not the smoke test's" in output
    assert not TrackedLink.objects.exists()


def test_without_a_worker_it_fails_saying_the_hit_waits_in_the_buffer(live_server: Any, redis_conn: Redis) -> None:
    status, output = run("--url", live_server.url, "--wait", "2")
    assert status == 1
    assert "not recorded in PostgreSQL within 2s: it waits in the Redis buffer" in output
    assert "is a worker on `default` running" in output


def test_with_redis_unreachable_it_fails_although_the_redirect_is_served(
    live_server: Any, redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = Queue("default", connection=Redis(port=_closed_port(), socket_connect_timeout=1))
    monkeypatch.setitem(dispatch._queues, "default", dead)
    status, output = run("--url", live_server.url, "--wait", "2")
    assert status == 1
    assert "redirected with its UTM parameters" in output  # served uncounted, as designed
    assert "tracking smoke test: Redis: Error " in output and "Connection refused" in output


def test_with_postgresql_away_or_a_wrong_url_it_fails_clearly(
    live_server: Any, redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, output = run("--url", "http://127.0.0.1:9")
    assert status == 1 and "cannot reach http://127.0.0.1:9/t/smoke-test/r/smoke?" in output
    status, output = run("--url", f"{live_server.url}/nowhere")
    assert status == 1 and "answered 404, expected a 302 redirect" in output
    assert run("--url", "ftp://example.com")[0] == 2

    connection.close()
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", _closed_port())
    status, output = run("--url", live_server.url)
    assert status == 1 and output.startswith("tracking smoke test: PostgreSQL: connection")
    connection.close()
