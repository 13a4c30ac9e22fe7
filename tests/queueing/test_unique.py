from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from redis import Redis

from queueing import unique
from queueing.dispatch import get_queue
from tests.queueing import jobs
from tests.queueing.conftest import run_worker


def test_a_second_dispatch_while_queued_does_nothing_and_says_so(
    redis_conn: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    first = jobs.unique_work.dispatch("k1")
    with caplog.at_level(logging.INFO, logger="queueing.dispatch"):
        second = jobs.unique_work.dispatch("k1")
    other = jobs.unique_work.dispatch("k2")
    assert first.status == "queued" and other.status == "queued"
    assert second.status == "duplicate" and second.duplicate_of == first.job_id and not second.accepted
    assert "already queued or running" in caplog.text
    assert get_queue("default").count == 2


def test_the_lock_is_released_when_the_job_finishes(redis_conn: Redis) -> None:
    jobs.unique_work.dispatch("k1")
    run_worker("default", "--burst")
    assert jobs.effects("effects") == ["unique:k1"]
    assert unique.list_locks(redis_conn) == []
    assert jobs.unique_work.dispatch("k1").status == "queued"


def test_until_processing_releases_when_the_job_starts(redis_conn: Redis) -> None:
    jobs.unique_until_start.dispatch("k")
    assert jobs.unique_until_start.dispatch("k").status == "duplicate"
    run_worker("default", "--burst")
    assert unique.list_locks(redis_conn) == []


def test_the_lock_expires_after_unique_for(redis_conn: Redis) -> None:
    jobs.unique_work.dispatch("k")
    (lock,) = unique.list_locks(redis_conn)
    assert 0 < lock.ttl <= 60


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_check_happens_at_commit(redis_conn: Redis) -> None:
    with transaction.atomic():
        jobs.unique_work.dispatch("k")
        jobs.unique_work.dispatch("k")
    assert get_queue("default").count == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        jobs.unique_work.dispatch("rolled-back")
        raise RuntimeError
    assert [lock.key.rsplit(":", 1)[-1] for lock in unique.list_locks(redis_conn)] == ['[["k"],{}]']


def test_bulk_dispatch_respects_unique_keys(redis_conn: Redis) -> None:
    results = jobs.unique_work.dispatch_many([("a",), ("b",), ("a",)])
    assert [r.status for r in results].count("duplicate") == 1
    assert get_queue("default").count == 2


@pytest.mark.django_db(transaction=True)  # the release is audited; dispatch happens at once
def test_operators_list_and_force_release_locks(redis_conn: Redis) -> None:
    jobs.unique_work.dispatch("stuck")
    out = StringIO()
    call_command("queue_locks", stdout=out)
    assert "tests.queueing.jobs.unique_work" in out.getvalue()
    (lock,) = unique.list_locks(redis_conn)
    out = StringIO()
    call_command("queue_locks", "--release", lock.key, stdout=out)
    assert "Released" in out.getvalue()
    assert jobs.unique_work.dispatch("stuck").status == "queued"
