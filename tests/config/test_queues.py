from __future__ import annotations

import json
import subprocess
import sys
import zlib

import django_rq
import pytest
from django.conf import settings
from django.db import transaction
from redis import Redis
from rq.job import Job

from queueing.jobs import echo


def _burst(*queues: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "rqworker", "--burst", "--serializer", "rq.serializers.JSONSerializer", *queues],
        check=True,
        cwd=settings.BASE_DIR,
        timeout=120,
        capture_output=True,
    )


@pytest.mark.django_db(transaction=True)
def test_a_job_is_enqueued_on_commit_only_and_runs_in_a_real_worker(redis_conn: Redis) -> None:
    high = django_rq.get_queue("high")
    with transaction.atomic():
        high.enqueue(echo, {"order_id": 1})
        assert high.count == 0  # not before commit
    assert high.count == 1

    with pytest.raises(RuntimeError), transaction.atomic():
        high.enqueue(echo, {"order_id": 2})
        raise RuntimeError("roll back")
    assert high.count == 1  # never on rollback

    job_id = high.job_ids[0]
    _burst("high", "default")
    job = Job.fetch(job_id, connection=redis_conn, serializer=high.serializer)
    assert job.is_finished
    assert job.return_value() == {"order_id": 1}


def test_job_arguments_are_stored_as_json_never_pickle(redis_conn: Redis) -> None:
    queue = django_rq.get_queue("default")
    job = queue.enqueue(echo, [1, "two", {"three": 3.0}])
    raw = redis_conn.hget(f"rq:job:{job.id}", "data")
    assert isinstance(raw, bytes)
    # RQ compresses the payload; underneath it must be plain JSON.
    func, _instance, args, kwargs = json.loads(zlib.decompress(raw))
    assert func == "queueing.jobs.echo"
    assert args == [[1, "two", {"three": 3.0}]] and kwargs == {}


@pytest.mark.django_db(transaction=True)
def test_a_model_instance_cannot_be_a_job_argument(redis_conn: Redis) -> None:
    from tests.factories import TenantFactory

    with pytest.raises(TypeError, match="not JSON serializable"):
        django_rq.get_queue("default").enqueue(echo, TenantFactory.create())
    assert django_rq.get_queue("default").count == 0
