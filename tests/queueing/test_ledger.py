from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from redis import Redis

from queueing.dispatch import get_queue
from queueing.models import FailedJob
from tests.queueing import jobs
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _fail(*tags: str) -> list[FailedJob]:
    for tag in tags:
        jobs.always_fails.dispatch(tag)
    assert run_worker("default", "--burst").returncode == 0
    return list(FailedJob.objects.order_by("id"))


def _call(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_queue_failed_lists_the_ledger(redis_conn: Redis) -> None:
    assert "No failed jobs." in _call("queue_failed")
    _fail("a")
    out = _call("queue_failed")
    assert "tests.queueing.jobs.always_fails" in out and "RuntimeError: a always fails" in out


def test_queue_retry_dispatches_again_with_fresh_attempts_and_deletes_the_row(redis_conn: Redis) -> None:
    first, second = _fail("a", "b")
    assert "Dispatched 1 job(s)" in _call("queue_retry", str(first.pk))
    assert list(FailedJob.objects.values_list("pk", flat=True)) == [second.pk]
    assert get_queue("default").count == 1
    redis_conn.delete("t:attempts")
    run_worker("default", "--burst")
    assert jobs.effects("attempts") == ["a", "a"]  # two fresh attempts (tries=2)
    assert FailedJob.objects.filter(args=["a"]).count() == 1  # failed again, recorded again


def test_queue_failed_lists_a_queue_since_removed_from_the_settings(redis_conn: Redis) -> None:
    [row] = _fail("a")
    FailedJob.objects.filter(pk=row.pk).update(queue="retired")  # as if "retired" was configured then
    assert "RuntimeError: a always fails" in _call("queue_failed", "--queue", "retired")
    with pytest.raises(CommandError, match="unknown queue 'nosuch'"):
        _call("queue_failed", "--queue", "nosuch")


def test_an_empty_queue_selector_is_refused_not_everything(redis_conn: Redis) -> None:
    _fail("a")
    # `queue_retry all --queue "$Q"` with Q unset must not retry every queue.
    with pytest.raises(CommandError, match="must not be empty"):
        _call("queue_retry", "all", "--queue", "")
    assert FailedJob.objects.count() == 1
    assert get_queue("default").count == 0


def test_queue_retry_all_by_queue(redis_conn: Redis) -> None:
    _fail("a", "b")
    assert "Dispatched 0 job(s)" in _call("queue_retry", "all", "--queue", "high")
    assert "Dispatched 2 job(s)" in _call("queue_retry", "all")
    assert not FailedJob.objects.exists()
    assert get_queue("default").count == 2


def test_retry_keeps_the_rows_when_redis_refuses_the_jobs(redis_conn: Redis) -> None:
    """Enqueue first, delete after: a Redis that refuses writes (out of memory,
    a real failure mode) leaves the ledger as it was."""
    from redis.exceptions import ResponseError

    from queueing.services import failed_job_retry

    _fail("a", "b")
    before = str(redis_conn.config_get("maxmemory")["maxmemory"])
    redis_conn.config_set("maxmemory-policy", "noeviction")
    redis_conn.config_set("maxmemory", "1")
    try:
        with pytest.raises(ResponseError, match="maxmemory"):
            failed_job_retry()
    finally:
        redis_conn.config_set("maxmemory", before)
    assert FailedJob.objects.count() == 2 and get_queue("default").count == 0
    assert len(failed_job_retry()) == 2
    assert not FailedJob.objects.exists() and get_queue("default").count == 2


def test_bad_ids_are_usage_errors_that_change_nothing(redis_conn: Redis) -> None:
    (row,) = _fail("a")
    for argv in (["queue_retry", "x1"], ["queue_retry", str(row.pk), "999999"], ["queue_forget", "-3"]):
        with pytest.raises(CommandError) as info:
            call_command(*argv)
        assert info.value.returncode == 2
    assert FailedJob.objects.count() == 1
    assert get_queue("default").count == 0


def test_forget_and_flush(redis_conn: Redis) -> None:
    a, b, c = _fail("a", "b", "c")
    assert "Forgot 1" in _call("queue_forget", str(a.pk))
    FailedJob.objects.filter(pk=b.pk).update(failed_at=timezone.now() - timedelta(hours=30))
    assert "Would delete 1" in _call("queue_flush", "--hours", "24", "--dry-run")
    assert "Deleted 1" in _call("queue_flush", "--hours", "24")
    assert list(FailedJob.objects.values_list("pk", flat=True)) == [c.pk]
    assert "Deleted 1" in _call("queue_flush")


def test_the_monitoring_query_works(redis_conn: Redis) -> None:
    _fail("a")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM queueing_failedjob WHERE failed_at > now() - interval '1 hour'")
        assert cur.fetchone() == (1,)


def test_admin_shows_the_traceback_and_retries(redis_conn: Redis, client: Client) -> None:
    (row,) = _fail("a")
    client.force_login(User.objects.create_superuser("op", "op@example.com", "pw-op-123456"))
    page = client.get(f"/admin/queueing/failedjob/{row.pk}/change/")
    assert page.status_code == 200
    assert b"Traceback" in page.content and b"a always fails" in page.content
    listing = client.get("/admin/queueing/failedjob/", {"queue": "default", "q": "always"})
    assert listing.status_code == 200 and b"always_fails" in listing.content
    response = client.post("/admin/queueing/failedjob/", {"action": "retry", "_selected_action": [row.pk]}, follow=True)
    assert b"Dispatched 1 job(s) again." in response.content
    assert not FailedJob.objects.exists()
    assert get_queue("default").count == 1
