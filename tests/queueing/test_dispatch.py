from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from redis import Redis
from rq.job import Job

from queueing.dispatch import NotJSONArgument, get_queue
from tests.factories import TenantFactory
from tests.queueing import jobs
from tests.queueing.conftest import run_worker


def test_it_runs_a_dispatched_job_in_a_real_worker(redis_conn: Redis) -> None:
    result = jobs.record.dispatch("one")
    assert result.status == "queued"
    assert get_queue("default").count == 1
    assert run_worker("default", "--burst").returncode == 0
    assert jobs.effects("effects") == ["one"]


@pytest.mark.django_db(transaction=True)
def test_it_dispatches_only_after_commit_and_never_on_rollback(redis_conn: Redis) -> None:
    with transaction.atomic():
        pending = jobs.record.dispatch("committed")
        assert pending.status == "on_commit"
        assert get_queue("default").count == 0
    assert get_queue("default").job_ids == [pending.job_id]

    with pytest.raises(RuntimeError), transaction.atomic():
        jobs.record.dispatch("rolled back")
        raise RuntimeError("abort")
    assert get_queue("default").count == 1


@pytest.mark.django_db
def test_a_model_instance_fails_at_dispatch_naming_the_argument(redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    with pytest.raises(NotJSONArgument, match=r"tenant_job: argument 0 is a Tenant, which is not JSON"):
        jobs.tenant_job.dispatch(tenant, "x")  # type: ignore[arg-type]
    with pytest.raises(NotJSONArgument, match=r"argument 'when' is a datetime"):
        jobs.record.dispatch(tag="x", when=datetime.now(UTC))  # type: ignore[call-arg]
    assert get_queue("default").count == 0


def test_conditional_dispatch(redis_conn: Redis) -> None:
    assert jobs.record.dispatch_if(False, "no") is None
    assert jobs.record.dispatch_unless(True, "no") is None
    assert jobs.record.dispatch_if(1, "yes") is not None
    assert jobs.record.dispatch_unless("", "yes too") is not None
    assert get_queue("default").count == 2


def test_delayed_and_timed_dispatch_wait_in_the_scheduled_registry(redis_conn: Redis) -> None:
    later = jobs.record.dispatch_in(timedelta(seconds=1), "later")
    at = jobs.record.dispatch_at(datetime.now(UTC) + timedelta(hours=1), "next hour")
    queue = get_queue("default")
    assert later.status == at.status == "scheduled"
    assert queue.count == 0
    assert set(queue.scheduled_job_registry.get_job_ids()) == {later.job_id, at.job_id}
    with pytest.raises(ValueError, match="aware datetime"):
        jobs.record.dispatch_at(datetime(2030, 1, 1), "naive")
    # A worker promotes the due one and runs it; the other keeps waiting.
    run_worker("default", "--max-time", "3", "--sleep", "1")
    assert jobs.effects("effects") == ["later"]
    assert queue.scheduled_job_registry.get_job_ids() == [at.job_id]


def test_dispatch_many_uses_one_round_trip_per_chunk(redis_conn: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    from redis.client import Pipeline
    from redis.client import Redis as Client

    trips: list[str] = []
    direct, flush = Client.execute_command, Pipeline.execute

    def counted_command(self: Client, *args: Any, **options: Any) -> Any:
        if not isinstance(self, Pipeline):
            trips.append(str(args[0]))
        return direct(self, *args, **options)

    def counted_pipeline(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        trips.append("PIPELINE")
        return flush(self, *args, **kwargs)

    jobs.record.dispatch_many([("warm-up",)])  # RQ asks the server version once per connection
    # Spies that call through: Redis does the real work, we only count round trips.
    monkeypatch.setattr(Client, "execute_command", counted_command)
    monkeypatch.setattr(Pipeline, "execute", counted_pipeline)
    results = jobs.record.dispatch_many([(f"fan-{i}",) for i in range(2500)], chunk_size=1000)
    monkeypatch.undo()
    assert len(results) == 2500 and all(r.status == "queued" for r in results)
    assert trips == ["PIPELINE"] * 3  # 3 chunks, one round trip each, nothing per job
    assert get_queue("default").count == 2501
    job = Job.fetch(results[0].job_id, connection=redis_conn, serializer=get_queue("default").serializer)
    assert job.args == ["fan-0"]


def test_retry_options_are_stored_with_the_job(redis_conn: Redis) -> None:
    result = jobs.flaky.dispatch("t", 0)
    job = Job.fetch(result.job_id, connection=redis_conn, serializer=get_queue("default").serializer)
    assert job.retries_left == 2  # tries=3 is three attempts in total
    assert job.meta["tries"] == 3
