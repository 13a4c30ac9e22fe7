"""The queue dashboard at /admin/queues/: access rules, what it shows (from real
workers, Redis and PostgreSQL), every operator action and its audit entry."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from django.utils.html import escape
from redis import Redis
from rq import Worker

from lib import charts
from outbox.models import OutboxMessage
from queueing import control, keys
from queueing.dispatch import get_queue
from queueing.models import AuditEntry, FailedJob, MetricSnapshot
from queueing.services import FailureRecord, failed_job_record
from tests.factories import UserFactory
from tests.queueing import jobs
from tests.queueing.conftest import run_worker, start_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/admin/queues/"
RECORD = "tests.queueing.jobs.record"


def _user(
    *, staff: bool = True, perm: bool = False, operate: bool = False, superuser: bool = False, email: str = ""
) -> User:
    user = UserFactory.create(is_staff=staff, is_superuser=superuser, **({"email": email} if email else {}))
    for codename, wanted in (("view_dashboard", perm or operate), ("operate_dashboard", operate)):
        if wanted:
            user.user_permissions.add(Permission.objects.get(content_type__app_label="queueing", codename=codename))
    return user


def _client(user: User, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def operator() -> User:
    return _user(operate=True, email="oncall@example.com")


@pytest.fixture
def ops(operator: User) -> Client:
    return _client(operator)


def _ledger(
    tag: str, *, job: str = RECORD, queue: str = "default", tenant: int | None = None, **extra: Any
) -> FailedJob:
    """A ledger row as a worker would leave it (tests of the page and the
    actions; test_failure_from_a_real_worker_* makes one the real way)."""
    row, _ = failed_job_record(
        record=FailureRecord(
            job_id=f"job-{tag}",
            queue=queue,
            job_name=job,
            args=[tag],
            kwargs={},
            exception_class=extra.get("exception_class", "RuntimeError"),
            message=extra.get("message", f"{tag} broke"),
            traceback=f'Traceback (most recent call last):\n  File "x.py"\nRuntimeError: {tag} broke',
            attempts=1,
            worker="w1",
            tenant_id=tenant,
        )
    )
    return row


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def _audit() -> list[tuple[str, str, str]]:
    return list(AuditEntry.objects.order_by("id").values_list("username", "action", "target"))


def _row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{re.escape(row_id)}".*?</tr>', html, re.S)
    assert match, f"no row {row_id}"
    return match.group(0)


# --------------------------------------------------------------------------- access


def test_it_sends_anonymous_visitors_to_the_admin_login(redis_conn: Redis, client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/queues/"
    assert client.post("/admin/queues/queues/default/pause/").status_code == 302
    assert not control.paused_queues(redis_conn)


def test_it_refuses_staff_without_the_permission(redis_conn: Redis) -> None:
    assert _client(_user()).get(URL).status_code == 403
    assert _client(_user()).post("/admin/queues/queues/default/pause/").status_code == 403
    assert not control.paused_queues(redis_conn)


def test_it_opens_for_the_permission_and_for_superusers(redis_conn: Redis, ops: Client) -> None:
    response = ops.get(URL)
    assert response.status_code == 200
    assert "Queue dashboard" in response.content.decode()
    assert _client(_user(superuser=True)).get(URL).status_code == 200


def test_the_allowlist_admits_only_listed_emails_superusers_included(redis_conn: Redis, settings: Any) -> None:
    settings.QUEUE_DASHBOARD_ALLOWLIST = ["OnCall@example.com"]
    assert _client(_user(superuser=True, email="boss@example.com")).get(URL).status_code == 403
    assert _client(_user(perm=True, email="oncall@example.com")).get(URL).status_code == 200
    # On the list is not enough without the right.
    assert _client(_user(email="oncall@example.com")).get(URL).status_code == 403


def test_actions_are_posts_with_csrf(redis_conn: Redis, operator: User) -> None:
    for url in ("queues/default/pause/", "failed/retry/", "failed/forget/", "failed/flush/", "locks/release/"):
        assert _client(operator).get(URL + url).status_code == 405
    assert _client(operator, csrf=True).post(URL + "queues/default/pause/").status_code == 403
    assert not control.paused_queues(redis_conn)
    assert not AuditEntry.objects.exists()


# --------------------------------------------------------------------------- what it shows


def test_it_shows_queues_live_workers_failures_tenants_and_panels(
    redis_conn: Redis, ops: Client, workers: list[subprocess.Popen[str]]
) -> None:
    jobs.always_fails.dispatch("boom")
    jobs.tenant_job.dispatch(42, "x")
    assert run_worker("default", "--burst").returncode == 0
    for n in range(3):
        jobs.record.dispatch(f"waiting-{n}")
    workers.append(start_worker("high", "--sleep", "1"))
    wait_for(lambda: Worker.all(connection=redis_conn), timeout=60)

    html = ops.get(URL).content.decode()
    assert 'class="num qd-size">3<' in _row(html, "queue-default")
    assert 'class="num qd-size">0<' in _row(html, "queue-high")
    assert 'id="overall-status" class="qd-badge qd-active"' in html
    worker = Worker.all(connection=redis_conn)[0]
    assert worker.name in html and str(worker.pid) in html
    assert "tests.queueing.jobs.always_fails" in html and "always fails" in html
    assert 'data-tenant="42"' in html
    assert 'id="panel-outbox"' in html and 'id="panel-webhooks"' in html
    assert '<svg class="chart"' in html  # jobs per minute, from the worker's counters
    assert 'id="failed-hour">2<' in html and 'id="failed-week">2<' in html
    # The fragment dashboard.js fetches is the live part alone.
    fragment = ops.get(URL + "live/").content.decode()
    assert 'id="queue-default"' in fragment and "<html" not in fragment


def test_failure_from_a_real_worker_shows_arguments_and_traceback(redis_conn: Redis, ops: Client) -> None:
    jobs.always_fails.dispatch("<b>tag</b>")
    assert run_worker("default", "--burst").returncode == 0
    row = FailedJob.objects.get()
    html = ops.get(f"{URL}failed/{row.pk}/").content.decode()
    assert "&quot;&lt;b&gt;tag&lt;/b&gt;&quot;" in html  # the argument, JSON, escaped
    assert "<b>tag</b>" not in html
    assert "Traceback (most recent call last)" in html and "RuntimeError" in html
    assert ops.get(f"{URL}failed/{row.pk + 1000}/").status_code == 404


def test_search_filters_failed_and_recent_jobs(redis_conn: Redis, ops: Client) -> None:
    _ledger("alpha", message="card declined")
    _ledger("beta", job="tests.queueing.jobs.flaky", queue="high", tenant=7)
    jobs.record.dispatch("queued-one")

    def failed_ids(query: str) -> set[str]:
        return set(re.findall(r'data-failed-id="(\d+)"', ops.get(f"{URL}?{query}").content.decode()))

    alpha, beta = (str(pk) for pk in FailedJob.objects.order_by("id").values_list("pk", flat=True))
    assert failed_ids("") == {alpha, beta}
    assert failed_ids("q=declined") == {alpha}
    assert failed_ids("q=FLAKY") == {beta}
    assert failed_ids("queue=high") == {beta}
    assert failed_ids("job=tests.queueing.jobs.record") == {alpha}
    assert failed_ids("tenant=7") == {beta}
    assert failed_ids("q=nothing-like-this") == set()
    assert failed_ids("queue=nonexistent") == {alpha, beta}  # an unknown queue is no filter, not an error
    assert RECORD in ops.get(f"{URL}?q=record").content.decode()  # the queued job in "recent"
    assert "No recent jobs match" in ops.get(f"{URL}?q=zzz").content.decode()


def test_failed_jobs_page_by_keyset_without_gaps_or_repeats(redis_conn: Redis, ops: Client) -> None:
    base = timezone.now() - timedelta(hours=2)
    FailedJob.objects.bulk_create(
        FailedJob(job_id=f"j{n}", queue="default", job_name=RECORD, exception_class="E") for n in range(120)
    )
    for n, pk in enumerate(FailedJob.objects.order_by("id").values_list("pk", flat=True)):
        # Pairs share a timestamp, so the id must break ties.
        FailedJob.objects.filter(pk=pk).update(failed_at=base + timedelta(seconds=n // 2))
    seen: list[str] = []
    query = ""
    for _ in range(5):
        html = ops.get(f"{URL}?{query}").content.decode()
        seen += re.findall(r'data-failed-id="(\d+)"', html)
        match = re.search(r'href="\?([^"]+)" rel="next"', html)
        if not match:
            break
        query = match.group(1).replace("&amp;", "&")
    newest_first = [str(pk) for pk in FailedJob.objects.order_by("-failed_at", "-id").values_list("pk", flat=True)]
    assert seen == newest_first


def test_charts_come_from_metric_snapshots(redis_conn: Redis, ops: Client) -> None:
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)
    for i in range(4):
        for name in ("default", "high"):
            MetricSnapshot.objects.create(
                period_start=start + timedelta(minutes=5 * i),
                scope="queue",
                name=name,
                jobs=10 * i,
                runtime_p95_ms=100.0 + i,
                wait_p95_ms=50.0,
            )
    MetricSnapshot.objects.create(period_start=start, scope="tenant", name="9", jobs=5, runtime_avg_ms=20.0)
    html = ops.get(URL).content.decode()
    assert html.count("<polyline") >= 6  # throughput, runtime and wait: one line per queue
    assert "Throughput (jobs/min), last 24 h" in html
    tenant = ops.get(f"{URL}?tenant=9&hours=1").content.decode()
    assert "tenant 9" in tenant and "last 1 h" in tenant


def test_chart_functions_draw_lines_bars_gaps_and_escape_labels() -> None:
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()
    svg = str(
        charts.line_chart(
            [
                charts.Series(
                    '<script>alert("x")</script>', [(t0, 1.0), (t0 + 300, 3.0), (t0 + 600, None), (t0 + 900, 2.0)]
                )
            ],
            title="Runtime & <wait>",
            unit=" ms",
        )
    )
    assert svg.startswith("<svg") and "<polyline" in svg and "<circle" in svg  # the gap splits the line
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "Runtime &amp; &lt;wait&gt;" in svg
    bars = str(charts.bar_chart([charts.Series("jobs", [(t0, 4.0), (t0 + 60, 0.0)])], title="Jobs"))
    assert bars.count("<rect") == 1
    assert "No data" in str(charts.line_chart([], title="Empty"))


# --------------------------------------------------------------------------- actions


def test_retry_one_all_and_by_filter_dispatch_again_and_a_worker_runs_them(
    redis_conn: Redis, ops: Client, operator: User
) -> None:
    one = _ledger("one")
    _ledger("two")
    _ledger("other-job", job="tests.queueing.jobs.record_high", queue="high")
    response = ops.post(URL + "failed/retry/", {"scope": "selected", "ids": [one.pk], "next": URL + "?q=x"})
    assert response.status_code == 302 and response["Location"] == URL + "?q=x"
    assert sorted(FailedJob.objects.values_list("job_id", flat=True)) == ["job-other-job", "job-two"]
    response = ops.post(
        URL + "failed/retry/", {"scope": "filter", "job": "tests.queueing.jobs.record_high"}, follow=True
    )
    assert "Dispatched 1 failed job(s) again" in " ".join(_messages(response))
    response = ops.post(URL + "failed/retry/", {"scope": "all"}, follow=True)
    assert "Dispatched 1 failed job(s) again" in " ".join(_messages(response))
    assert not FailedJob.objects.exists()
    assert run_worker("high", "default", "--burst").returncode == 0
    assert sorted(jobs.effects("effects")) == ["high:other-job", "one", "two"]
    assert _audit() == [
        (operator.username, "retry", f"failed_job:{one.pk}"),
        (operator.username, "retry", "failed_jobs:job=tests.queueing.jobs.record_high"),
        (operator.username, "retry", "failed_jobs:all"),
    ]
    first = AuditEntry.objects.order_by("id").first()
    assert first is not None and first.user_id == operator.pk and first.ip == "127.0.0.1"
    assert first.detail["jobs"] == [RECORD] and len(first.detail["new_job_ids"]) == 1


def test_retry_by_queue_and_bad_filters(redis_conn: Redis, ops: Client, operator: User) -> None:
    _ledger("d")
    _ledger("h", job="tests.queueing.jobs.record_high", queue="high")
    response = ops.post(URL + "failed/retry/", {"scope": "filter", "queue": "high"}, follow=True)
    assert "(queue=high)" in " ".join(_messages(response))
    assert list(FailedJob.objects.values_list("queue", flat=True)) == ["default"]
    assert get_queue("high").count == 1
    for bad in ({"scope": "filter"}, {"scope": "filter", "queue": "nope"}, {"scope": "selected"}):
        response = ops.post(URL + "failed/retry/", bad, follow=True)
        assert response.status_code == 200 and _messages(response)
    assert _audit() == [(operator.username, "retry", "failed_jobs:queue=high")]


def test_forget_and_flush(redis_conn: Redis, ops: Client, operator: User) -> None:
    a, b, old = _ledger("a"), _ledger("b"), _ledger("old")
    FailedJob.objects.filter(pk=old.pk).update(failed_at=timezone.now() - timedelta(days=10))
    ops.post(URL + "failed/forget/", {"ids": [a.pk]})
    assert not FailedJob.objects.filter(pk=a.pk).exists()
    ops.post(URL + "failed/flush/", {"older_than_hours": "168"})
    assert list(FailedJob.objects.values_list("pk", flat=True)) == [b.pk]
    response = ops.post(URL + "failed/flush/", {"older_than_hours": "-1"}, follow=True)
    assert "positive whole number" in " ".join(_messages(response))
    ops.post(URL + "failed/flush/", {"older_than_hours": ""})
    assert not FailedJob.objects.exists()
    assert get_queue("default").count == 0  # forgotten, not retried
    assert _audit() == [
        (operator.username, "forget", f"failed_job:{a.pk}"),
        (operator.username, "flush", "failed_jobs:older_than=168h"),
        (operator.username, "flush", "failed_jobs:all"),
    ]
    assert AuditEntry.objects.filter(action="flush").first().detail["deleted"] == 1  # type: ignore[union-attr]


def test_pause_and_continue_a_queue(redis_conn: Redis, ops: Client, operator: User) -> None:
    response = ops.post(URL + "queues/default/pause/", follow=True)
    assert control.paused_queues(redis_conn) == {"default"}
    assert "Paused default" in " ".join(_messages(response))
    html = response.content.decode()
    assert "qd-paused" in _row(html, "queue-default") and 'data-action="continue"' in _row(html, "queue-default")
    ops.post(URL + "queues/default/continue/")
    assert control.paused_queues(redis_conn) == set()
    assert ops.post(URL + "queues/nope/pause/").status_code == 404
    assert _audit() == [
        (operator.username, "pause", "queue:default"),
        (operator.username, "continue", "queue:default"),
    ]


def test_unlock_releases_a_unique_lock(redis_conn: Redis, ops: Client, operator: User) -> None:
    assert jobs.unique_work.dispatch("k").status == "queued"
    (key,) = [k.decode() for k in redis_conn.scan_iter(match=keys.UNIQUE_PATTERN)]
    assert escape(key) in ops.get(URL).content.decode()
    ops.post(URL + "locks/release/", {"key": key})
    assert not redis_conn.exists(key)
    assert jobs.unique_work.dispatch("k").status == "queued"  # no longer a duplicate
    response = ops.post(URL + "locks/release/", {"key": "rq:queue:default"}, follow=True)
    assert "not a unique-job lock" in " ".join(_messages(response))
    assert redis_conn.exists("rq:queue:default")
    assert _audit() == [(operator.username, "unlock", key)]


def test_the_outbox_panel_replays_dead_messages(redis_conn: Redis, ops: Client, operator: User) -> None:
    dead = OutboxMessage.objects.create(
        event_type="test.event", aggregate_type="t", aggregate_id="1", status=OutboxMessage.Status.DEAD
    )
    html = ops.get(URL).content.decode()
    assert "/admin/queues/panels/outbox/replay_dead/" in html and "/admin/outbox/outboxmessage/" in html
    response = ops.post(URL + "panels/outbox/replay_dead/", follow=True)
    assert "Replayed 1 dead outbox message(s)." in _messages(response)
    dead.refresh_from_db()
    assert dead.status == OutboxMessage.Status.PENDING
    assert _audit() == [(operator.username, "outbox.replay_dead", "outbox")]
    assert ops.post(URL + "panels/outbox/nothing/").status_code == 404


def test_redirects_stay_on_this_site(redis_conn: Redis, ops: Client) -> None:
    response = ops.post(URL + "queues/high/pause/", {"next": "https://evil.example.com/"})
    assert response["Location"] == URL


def test_the_admin_links_the_dashboard_and_shows_the_audit_log(redis_conn: Redis, admin_client: Client) -> None:
    assert 'href="/admin/queues/"' in admin_client.get("/admin/").content.decode()
    admin_client.post(URL + "queues/high/pause/")
    page = admin_client.get("/admin/queueing/auditentry/").content.decode()
    assert "queue:high" in page and "pause" in page
    entry = AuditEntry.objects.get()
    assert admin_client.get(f"/admin/queueing/auditentry/{entry.pk}/change/").status_code == 200
    for model in ("alertevent", "metricsnapshot"):
        assert admin_client.get(f"/admin/queueing/{model}/").status_code == 200
    assert admin_client.get("/admin/queueing/auditentry/add/").status_code == 403


def test_it_shows_the_supervisor_state_and_survives_a_broken_one(redis_conn: Redis, ops: Client) -> None:
    assert "No queue master is publishing" in ops.get(URL).content.decode()
    now = timezone.now().timestamp()
    state = {
        "master": {
            "name": "master-1",
            "host": "box",
            "pid": 99,
            "started_at": now - 90,
            "status": "running",
            "updated_at": now,
        },
        "supervisors": [
            {
                "name": "sup-default",
                "queues": ["default"],
                "balance": "auto",
                "min_processes": 1,
                "max_processes": 3,
                "paused": [],
                "pools": [{"queue": "default", "target": 2, "processes": [{"pid": 1, "started_at": now}] * 2}],
                "decisions": [{"at": now - 5, "queue": "default", "from": 1, "to": 2, "reason": "<backlog> 40 s"}],
            }
        ],
    }
    redis_conn.hset(keys.SUPERVISOR_MASTERS, "master-1", json.dumps(state))
    redis_conn.set(keys.supervisor_alive("master-1"), 1)
    other = json.loads(json.dumps(state))
    other["master"].update(name="master-2", host="box-2")
    redis_conn.hset(keys.SUPERVISOR_MASTERS, "master-2", json.dumps(other))
    redis_conn.set(keys.supervisor_alive("master-2"), 1)
    html = ops.get(URL).content.decode()
    assert "master-1" in html and "master-2" in html and "sup-default" in html and "qd-running" in html
    assert "default: 1 → 2 — &lt;backlog&gt; 40 s" in html
    redis_conn.delete(keys.supervisor_alive("master-2"))  # stopped publishing: gone
    assert "master-2" not in ops.get(URL).content.decode()
    redis_conn.hset(keys.SUPERVISOR_MASTERS, "master-1", "{not json")
    assert "No queue master is publishing" in ops.get(URL).content.decode()


def test_django_rq_stats_and_metrics_views_are_for_operators_only(client: Any, admin_client: Any) -> None:
    from tests.factories import UserFactory

    staff = UserFactory.create(is_staff=True)
    client.force_login(staff)
    for url in ("/admin/django_rq/dashboard/stats.json", "/admin/django_rq/dashboard/metrics/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
        assert admin_client.get(url).status_code == 200, url


def test_viewing_does_not_include_acting(redis_conn: Redis) -> None:
    viewer = _client(_user(perm=True))
    assert viewer.get(URL).status_code == 200
    assert viewer.post(f"{URL}queues/default/pause/").status_code == 403
    assert viewer.post(f"{URL}failed/flush/").status_code == 403
    from queueing.control import paused_queues
    from queueing.models import AuditEntry

    assert paused_queues(redis_conn) == set() and not AuditEntry.objects.exists()


def test_a_viewer_sees_no_action_buttons(redis_conn: Redis) -> None:
    row = _ledger("v")
    viewer = _client(_user(perm=True))
    for url in (URL, f"{URL}live/", f"{URL}failed/{row.pk}/"):
        page = viewer.get(url).content.decode()
        assert 'method="post"' not in page, url
    operator = _client(_user(operate=True))
    assert 'method="post"' in operator.get(f"{URL}failed/{row.pk}/").content.decode()


def test_recent_jobs_show_finished_and_failed_attempts_without_keeping_job_hashes(
    redis_conn: Redis, ops: Client
) -> None:
    from queueing import recent

    jobs.record.dispatch("done-one")
    jobs.always_fails.dispatch("broken-one")
    assert run_worker("default", "--burst").returncode == 0
    assert len(redis_conn.keys("rq:job:*")) == 1  # the finished job's hash is gone (the failed one is RQ's)

    html = ops.get(URL).content.decode()
    section = html[html.index('id="recent"') :]
    assert '["done-one"]' in escape(section) or "[&quot;done-one&quot;]" in section
    assert "finished" in section and "failed" in section

    # Capped per queue, and entries past KEEP_SECONDS are not shown.
    jobs.record.dispatch_many([(f"n{n}",) for n in range(recent.PER_QUEUE + 5)])
    assert run_worker("default", "--burst").returncode == 0
    # One worker process trimmed after every TRIM_EVERY of its pushes.
    assert recent.PER_QUEUE <= redis_conn.llen(keys.recent_finished("default")) < recent.PER_QUEUE + recent.TRIM_EVERY
    assert 0 < redis_conn.ttl(keys.recent_finished("default")) <= recent.KEEP_SECONDS
    assert len(recent.read(redis_conn, ["default"])) == recent.PER_QUEUE
    assert recent.read(redis_conn, ["default"], now=time.time() + recent.KEEP_SECONDS + 1) == []
