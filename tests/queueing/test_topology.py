"""Queues as configuration: logical queues routed to physical ones, the high
worker's borrow limit, queue_clear / queue_flush --queue, queue_topology and
its supervisord programs (started under a real supervisord)."""

from __future__ import annotations

import configparser
import signal
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from redis import Redis
from rq import Worker
from rq.job import Job
from rq.utils import now

from config.queue_layout import load_layout
from queueing import claims
from queueing.dispatch import get_queue
from queueing.models import AuditEntry, FailedJob
from queueing.services import FailureRecord, failed_job_record
from queueing.topology import UnroutedQueue, physical_queue
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def _use_layout(settings: Any, name: str) -> None:
    layout = load_layout(name, Path(settings.BASE_DIR))
    url = settings.RQ_QUEUES["default"]["URL"]
    settings.QUEUE_LAYOUT = layout
    settings.RQ_QUEUES = {
        q.name: {"URL": url, "DEFAULT_TIMEOUT": q.timeout, "SERIALIZER": "rq.serializers.JSONSerializer"}
        for q in layout.queues.values()
    }
    settings.QUEUE_ROUTES = layout.routes
    settings.QUEUE_SUPERVISORS = layout.pools
    settings.QUEUE_DEFAULT_TRIES = {q.name: q.tries for q in layout.queues.values() if q.tries}


def _ids(conn: Redis, queue: str) -> list[str]:
    return [i.decode() if isinstance(i, bytes) else str(i) for i in conn.lrange(f"rq:queue:{queue}", 0, -1)]


def test_a_job_lands_on_the_queue_its_logical_queue_routes_to(redis_conn: Redis, settings: Any) -> None:
    on_notifications = jobs.record.on_queue("notifications")
    sent = on_notifications.dispatch("vito")
    assert sent.queue == "default" and _ids(redis_conn, "default") == [sent.job_id]
    # AskProAI's layout splits notifications off default: configuration only.
    _use_layout(settings, "askproai")
    split = on_notifications.dispatch("askproai")
    assert split.queue == "notifications" and _ids(redis_conn, "notifications") == [split.job_id]
    assert physical_queue("high") == "webhooks"


def test_an_unrouted_queue_fails_at_dispatch_and_enqueues_nothing(redis_conn: Redis) -> None:
    with pytest.raises(UnroutedQueue, match=r"queue 'reports' has no route in the queue layout 'vito'.*\[routes\]"):
        jobs.record.on_queue("reports").dispatch("x")
    assert redis_conn.keys("rq:queue:*") == []


def test_a_queue_declares_tries_for_jobs_that_declare_none(redis_conn: Redis, settings: Any) -> None:
    settings.QUEUE_DEFAULT_TRIES = {"default": 4}
    job = get_queue("default").fetch_job(jobs.record.dispatch("t").job_id)
    assert job is not None
    assert job.meta["tries"] == 4 and job.retries_left == 3
    declared = get_queue("default").fetch_job(jobs.flaky.dispatch("t", 0).job_id)
    assert declared is not None and declared.meta["tries"] == 3  # the job's own declaration wins


def _claim(conn: Redis, names: list[str], *, limit: int | None, own_first: str = "high") -> str | None:
    queues = [get_queue(n) for n in names]
    found = claims.claim(
        conn,
        queues,
        worker_name="w-test",
        worker_key="rq:worker:w-test",
        started_at=now(),
        borrow_max_timeout=limit,
        own_first=own_first,
    )
    return None if found is None else found.job_id


def test_the_borrow_limit_takes_only_short_jobs_from_later_queues_in_order(redis_conn: Redis) -> None:
    quick = jobs.quick.dispatch("q1").job_id
    long = jobs.long_running.dispatch("l1", 0).job_id
    later = jobs.quick.dispatch("q2").job_id
    assert _claim(redis_conn, ["high", "default"], limit=60) == quick
    # A 30-minute job at the head: the high worker leaves it, and what is behind it, alone.
    assert _claim(redis_conn, ["high", "default"], limit=60) is None
    assert _ids(redis_conn, "default") == [long, later]
    # A high job is still taken at once, and a default worker takes the long one.
    urgent = jobs.record_high.dispatch("h").job_id
    assert _claim(redis_conn, ["high", "default"], limit=60) == urgent
    assert _claim(redis_conn, ["default"], limit=None) == long
    # A job deleted while queued is dropped, then the next one is judged; with
    # high paused the worker's list starts at default and the limit still holds.
    Job.fetch(later, connection=redis_conn).delete(remove_from_queue=False)
    second_long = jobs.long_running.dispatch("l2", 0).job_id
    assert _claim(redis_conn, ["default"], limit=60, own_first="high") is None
    assert _ids(redis_conn, "default") == [second_long]


def test_a_borrowing_high_worker_never_starts_a_long_default_job(redis_conn: Redis) -> None:
    jobs.quick.dispatch("before")
    jobs.long_running.dispatch("export", 0.1)
    jobs.quick.dispatch("after")
    done = run_worker("high", "default", "--burst", "--borrow-max-timeout", "60")
    assert done.returncode == 0, done.stderr
    assert jobs.effects("quick") == ["before"] and jobs.effects("long") == []
    # Laravel's plain --queue=high,default takes everything, the long job included.
    assert run_worker("high", "default", "--burst").returncode == 0
    assert jobs.effects("long") == ["export"] and jobs.effects("quick") == ["before", "after"]


def test_queue_clear_deletes_pending_jobs_frees_unique_locks_and_is_audited(redis_conn: Redis) -> None:
    ids = [jobs.record.dispatch(str(n)).job_id for n in range(3)]
    locked = jobs.unique_work.dispatch("k")
    assert jobs.unique_work.dispatch("k").status == "duplicate"
    jobs.record_high.dispatch("stays")
    out = StringIO()
    call_command("queue_clear", "default", "--force", stdout=out)
    assert "Deleted 4 pending job(s) from 'default'." in out.getvalue()
    assert _ids(redis_conn, "default") == [] and len(_ids(redis_conn, "high")) == 1
    assert not any(redis_conn.exists(Job.key_for(i)) for i in [*ids, locked.job_id])
    assert jobs.unique_work.dispatch("k").status == "queued"  # its lock went with it
    entry = AuditEntry.objects.order_by("-id").first()
    assert entry is not None and (entry.action, entry.target, entry.detail["deleted"]) == ("clear", "default", 4)


def test_queue_clear_needs_force_off_a_terminal_and_a_known_queue(redis_conn: Redis) -> None:
    jobs.record.dispatch("kept")
    env = worker_env()
    done = subprocess.run(
        [sys.executable, "manage.py", "queue_clear", "default"],
        env=env,
        cwd=settings.BASE_DIR,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "add --force" in done.stderr
    assert len(_ids(redis_conn, "default")) == 1
    with pytest.raises(CommandError, match="unknown queue 'nope'"):
        call_command("queue_clear", "nope", "--force")


def _failed(tag: str, queue: str) -> None:
    failed_job_record(
        record=FailureRecord(
            job_id=f"job-{tag}",
            queue=queue,
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


def test_queue_flush_queue_deletes_only_that_queues_failed_jobs() -> None:
    _failed("a", "high")
    _failed("b", "default")
    _failed("c", "retired")  # a queue an earlier layout had
    out = StringIO()
    call_command("queue_flush", "--queue", "high", "--dry-run", stdout=out)
    assert "Would delete 1 failed job(s) of queue 'high'." in out.getvalue()
    call_command("queue_flush", "--queue", "high", stdout=out)
    call_command("queue_flush", "--queue", "retired", stdout=out)
    assert list(FailedJob.objects.values_list("queue", flat=True)) == ["default"]
    with pytest.raises(CommandError, match="unknown queue 'nope'"):
        call_command("queue_flush", "--queue", "nope")


def test_queue_topology_prints_queues_routes_pools_and_what_lands_where(settings: Any) -> None:
    _use_layout(settings, "askproai")
    out = StringIO()
    call_command("queue_topology", stdout=out)
    text = out.getvalue()
    assert "Layout askproai" in text
    for line in ("webhooks         timeout 90s", "maintenance      timeout 600s", "high                 -> webhooks"):
        assert line in text
    assert "webhooks [webhooks] balance auto, 1-10 processes" in text
    assert "job marketing.jobs.send_campaign_email [notifications]" in text.split("  notifications:")[1]
    assert "handle_webhook_event [webhooks]" in text.split("  webhooks:")[-1].split("  default:")[0]


def _supervisord(tmp_path: Path, programs: str) -> subprocess.Popen[bytes]:
    (tmp_path / "programs.conf").write_text(programs)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon = true\nlogfile = {tmp_path}/supervisord.log\npidfile = {tmp_path}/s.pid\n"
        f"[include]\nfiles = {tmp_path}/programs.conf\n"
    )
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "supervisord"), "-c", str(conf)], env=worker_env(), cwd=tmp_path
    )


@pytest.mark.parametrize(("form", "expected"), [("master", 2), ("pools", 4)])
def test_queue_topology_supervisord_programs_start_under_supervisord(
    redis_conn: Redis, tmp_path: Path, form: str, expected: int
) -> None:
    out = StringIO()
    call_command("queue_topology", "--supervisord", form, "--log-dir", str(tmp_path), stdout=out)
    parsed = configparser.RawConfigParser()
    parsed.read_string(out.getvalue())
    names = [s for s in parsed.sections() if s.startswith("program:")]
    assert names == (
        ["program:vito-queue-master"] if form == "master" else ["program:vito-worker", "program:vito-worker-high"]
    )
    proc = _supervisord(tmp_path, out.getvalue())
    try:
        # vito: master → default (1 at start) + high; pools → default ×3 + high ×1.
        wait_for(lambda: len(Worker.all(connection=redis_conn)) == expected, timeout=90, step=0.5)
        queues = sorted(tuple(w.queue_names()) for w in Worker.all(connection=redis_conn))
        assert ("high", "default") in queues and ("default",) in queues
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    assert proc.returncode == 0
    wait_for(lambda: not Worker.all(connection=redis_conn), timeout=30)
    logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert "Traceback" not in logs


def test_the_dashboard_shows_every_queue_of_the_layout_with_its_timeout_and_work(
    redis_conn: Redis, settings: Any, admin_client: Any
) -> None:
    _use_layout(settings, "askproai")
    page = admin_client.get("/admin/queues/").content.decode()
    for name, timeout in {"webhooks": 90, "default": 60, "sync": 300, "notifications": 60, "cache": 120}.items():
        assert f'<tr id="queue-{name}"' in page
        assert f'<tr id="layout-{name}"><th scope="row">{name}</th><td class="num">{timeout} s</td>' in page
    row = page.split('<tr id="layout-notifications">')[1].split("</tr>")[0]
    assert "marketing.jobs.send_campaign_email" in row and "webhook-deliveries" in row


def _command(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def test_health_monitor_pause_metrics_and_alerts_work_on_any_configured_queue(
    redis_conn: Redis, settings: Any, client: Any
) -> None:
    from queueing.alerts import check_alerts

    _use_layout(settings, "askproai")
    settings.QUEUE_ALERT_DEPTH = {**settings.QUEUE_ALERT_DEPTH, "sync": 1}
    settings.METRICS_TOKEN = "t0ken"
    jobs.record.on_queue("sync").dispatch("a")
    jobs.record.on_queue("sync").dispatch("b")
    status, output = _command("queue_health")
    assert status == 1, output  # no worker serves any queue here: unhealthy, and it says so per queue
    for queue in ("webhooks", "default", "sync", "notifications", "cache", "maintenance"):
        assert f"workers:{queue}" in output
    assert _command("queue_monitor", "sync:5", "maintenance:0")[0] == 0
    assert _command("queue_monitor", "sync:1")[0] == 1
    assert _command("queue_pause", "cache")[0] == 0 and _command("queue_continue", "cache")[0] == 0
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").content.decode()
    assert 'queue="maintenance"' in metrics and 'queue="sync"' in metrics
    fired = check_alerts(redis_conn)
    assert any("sync" in name for name in fired), fired
