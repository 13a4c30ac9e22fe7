"""Operator actions from the command line leave an audit row, like the
dashboard's: who (the OS user and host), what, and how many."""

from __future__ import annotations

import os
import pwd
import socket
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from redis import Redis

from outbox.models import OutboxMessage
from queueing import unique
from queueing.models import AuditEntry
from queueing.services import FailureRecord, failed_job_record

pytestmark = pytest.mark.django_db(transaction=True)

WHO = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"


def _ledger(tag: str) -> int:
    row, _ = failed_job_record(
        record=FailureRecord(
            job_id=f"job-{tag}",
            queue="default",
            job_name="tests.queueing.jobs.record",
            args=[tag],
            kwargs={},
            exception_class="RuntimeError",
            message="broke",
            traceback="Traceback",
            attempts=1,
            worker="w1",
            tenant_id=None,
        )
    )
    return int(row.pk)


def run(*args: str) -> None:
    call_command(*args, stdout=StringIO())


def last() -> tuple[str, str, str, dict[str, Any]]:
    entry = AuditEntry.objects.order_by("-id").first()
    assert entry is not None and entry.user is None
    return entry.username, entry.action, entry.target, entry.detail


def test_queue_commands_are_audited(redis_conn: Redis) -> None:
    first, second, third = _ledger("a"), _ledger("b"), _ledger("c")

    run("queue_retry", str(first))
    who, action, target, detail = last()
    assert (who, action, target) == (WHO, "retry", f"failed_job:{first}")
    assert detail["via"] == "command" and detail["ids"] == [first] and len(detail["new_job_ids"]) == 1

    run("queue_forget", str(second))
    assert last()[1:] == ("forget", f"failed_job:{second}", {"via": "command", "ids": [second], "deleted": 1})

    run("queue_retry", "all", "--queue", "default")
    assert last()[1:] == ("retry", "failed_jobs:all:default", {"via": "command", "dispatched": 1})
    assert third  # retried by "all"

    _ledger("d")
    run("queue_flush")
    assert last()[1:] == ("flush", "failed_jobs", {"via": "command", "older_than_hours": None, "deleted": 1})

    run("queue_pause", "high")
    assert last()[1:] == ("pause", "queue:high", {"via": "command", "changed": True})
    run("queue_continue", "high")
    assert last()[1:] == ("continue", "queue:high", {"via": "command", "changed": True})

    unique.acquire(redis_conn, lock="vito:unique:tests.x:1", job_id="j1", seconds=60)
    run("queue_locks", "--release", "vito:unique:tests.x:1")
    assert last()[1:] == ("unlock", "vito:unique:tests.x:1", {"via": "command", "released": True})
    unique.acquire(redis_conn, lock="vito:unique:tests.x:2", job_id="j2", seconds=60)
    run("queue_locks", "--release-all")
    assert last()[1:] == ("unlock", "locks:all", {"via": "command", "released": 1})

    count = AuditEntry.objects.count()
    run("queue_failed")  # reads change nothing and write no audit row
    run("queue_flush", "--dry-run")
    assert AuditEntry.objects.count() == count


def test_the_operator_is_the_real_uid_and_who_used_sudo(redis_conn: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "someone-else")  # the caller's to set: not believed
    monkeypatch.setenv("LOGNAME", "someone-else")
    monkeypatch.setenv("SUDO_USER", "alice")
    run("queue_pause", "default")
    assert last()[0] == f"{WHO} (sudo by alice)"


def test_outbox_commands_are_audited(redis_conn: Redis) -> None:
    message = OutboxMessage.objects.create(
        event_type="test.dead", aggregate_type="test", aggregate_id="1", status=OutboxMessage.Status.DEAD
    )
    run("outbox_replay", "--from-id", str(message.pk), "--to-id", str(message.pk))
    who, action, target, detail = last()
    assert (who, action, target) == (WHO, "replay", "outbox")
    assert detail == {
        "via": "command",
        "from_id": message.pk,
        "to_id": message.pk,
        "replayed": 1,
        "force_handlers": False,
    }

    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxMessage.Status.DISPATCHED, dispatched_at=timezone.now() - timedelta(hours=1)
    )
    with pytest.raises(SystemExit):  # it found something wrong (and repaired it)
        run("outbox_coroner", "--redispatch")
    assert last()[1] == "redispatch" and last()[3]["lost"] == 1 and last()[3]["redispatched"] == 1
