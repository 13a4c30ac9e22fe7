"""A worker whose PostgreSQL is unreachable waits for it instead of failing
(and spending an attempt of) every job in the queue."""

from __future__ import annotations

import socket
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from redis import Redis

from queueing.dispatch import get_queue
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def _unreachable_database_url() -> str:
    with socket.socket() as sock:  # a loopback port nobody listens on: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = urlsplit(worker_env()["DATABASE_URL"])
    return urlunsplit(url._replace(netloc=f"postgres@127.0.0.1:{port}"))


def test_a_worker_waits_for_the_database_instead_of_burning_the_queue(redis_conn: Redis) -> None:
    for tag in ("a", "b", "c"):
        jobs.needs_database.dispatch(tag)
    env = {**worker_env(), "DATABASE_URL": _unreachable_database_url()}
    down = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--sleep", "1", "--max-time", "4"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert down.returncode == 0, down.stderr
    # The first job failed (one attempt spent, retry scheduled); the others were not taken.
    assert jobs.effects("attempts") == ["a"]
    queue = get_queue("default")  # b and c untouched, a back after its 1 s backoff
    assert redis_conn.llen(queue.key) + redis_conn.zcard(queue.scheduled_job_registry.key) == 3
    assert "PostgreSQL unreachable" in down.stderr + down.stdout
    # The database is back: everything runs, the first job on its second attempt.
    assert run_worker("default", "--burst").returncode == 0
    assert sorted(jobs.effects("effects")) == ["a", "b", "c"]
    assert sorted(jobs.effects("attempts")) == ["a", "a", "b", "c"]


def test_a_burst_worker_ends_while_the_database_is_away_and_leaves_the_jobs(redis_conn: Redis) -> None:
    for tag in ("a", "b"):
        jobs.needs_database.dispatch(tag)
    env = {**worker_env(), "DATABASE_URL": _unreachable_database_url()}
    down = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--burst", "--sleep", "1"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,  # it used to wait for PostgreSQL forever
    )
    assert down.returncode == 0, down.stderr
    assert "PostgreSQL unreachable, jobs left queued" in down.stderr + down.stdout
    assert jobs.effects("attempts") == ["a"]  # b was never taken
    queue = get_queue("default")
    assert redis_conn.llen(queue.key) + redis_conn.zcard(queue.scheduled_job_registry.key) == 2
