"""The retention purge on a database holding old and new rows of every kind, and files on disk."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Model
from redis import Redis

from analytics.models import LimitAudit, MonthlyReport
from outbox.models import InboxEntry, OutboxMessage
from queueing import retention
from queueing.checks import retention_days_are_known
from queueing.jobs import purge as purge_job
from queueing.models import AlertEvent, AuditEntry, FailedJob, MetricSnapshot, PurgeRun
from queueing.retention import engine
from tenants.models import Interaction, Plan, Tenant
from tenants.retention import validate_plan_retention
from tests.factories import PlanFactory, TenantFactory
from tests.queueing.conftest import run_worker
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


@dataclass
class Seeded:
    """What was put in: the rows that must go and the rows that must stay, per model."""

    doomed: dict[type[Model], set[int]] = field(default_factory=dict)
    kept: dict[type[Model], set[int]] = field(default_factory=dict)
    doomed_files: list[str] = field(default_factory=list)
    kept_files: list[str] = field(default_factory=list)

    def add(self, row: Model, *, goes: bool) -> None:
        (self.doomed if goes else self.kept).setdefault(type(row), set()).add(row.pk)


def _aged(row: Model, field_name: str, at: datetime) -> Model:
    """Set a timestamp that auto_now_add would not let us give at creation."""
    type(row)._default_manager.filter(pk=row.pk).update(**{field_name: at})
    return row


def _file(name: str, *, age: timedelta, now: datetime, size: int = 100) -> str:
    stored = default_storage.save(name, ContentFile(b"x" * size))
    stamp = (now - age).timestamp()
    os.utime(default_storage.path(stored), (stamp, stamp))
    return stored


def _seed(now: datetime, tenant: Tenant, long_plan_tenant: Tenant) -> Seeded:
    seeded = Seeded()
    days = timedelta(days=1)

    for age, goes in ((40, True), (1, False)):
        failed = FailedJob.objects.create(job_id=f"j{age}", queue="default", job_name="x.y", exception_class="E")
        seeded.add(_aged(failed, "failed_at", now - age * days), goes=goes)
    for age, goes in ((400, True), (10, False)):
        entry = AuditEntry.objects.create(username="ops", action="retry")
        seeded.add(_aged(entry, "at", now - age * days), goes=goes)
    for age, goes in ((100, True), (10, False)):
        alert = AlertEvent.objects.create(condition="depth:default", state="firing", message="deep")
        seeded.add(_aged(alert, "at", now - age * days), goes=goes)
    for age, goes in ((10, True), (1, False)):
        snap = MetricSnapshot.objects.create(period_start=now - age * days, scope="queue", name=f"q{age}")
        seeded.add(snap, goes=goes)

    # Outbox: processed long ago goes (with its inbox row); pending or dead stays however old.
    for status, age, goes in (("processed", 10, True), ("pending", 10, False), ("dead", 10, False)):
        message = OutboxMessage.objects.create(
            event_type="order.paid", aggregate_type="order", aggregate_id="1", status=status
        )
        if status == "processed":
            message.processed_at = now - age * days
            message.save(update_fields=["processed_at"])
            InboxEntry.objects.create(message_id=message.pk, handler="h")
        seeded.add(message, goes=goes)
    recent = OutboxMessage.objects.create(
        event_type="order.paid", aggregate_type="order", aggregate_id="2", status="processed", processed_at=now
    )
    seeded.add(recent, goes=False)

    # Webhook events: handled ones go; one not yet processed, or failed, stays.
    for status, age, goes in (("processed", 40, True), ("ignored", 40, True), ("received", 40, False),
                              ("failed", 40, False), ("processed", 1, False)):  # fmt: skip
        event = WebhookEvent.objects.create(
            provider="stripe", event_id=f"{status}{age}", type="t", payload={}, status=status
        )
        seeded.add(_aged(event, "received_at", now - age * days), goes=goes)

    # Interactions: the tenant on the default 395 days loses its 400-day-old hits;
    # the tenant whose plan keeps them 800 days keeps the same-aged ones.
    for owner, goes_if_old in ((tenant, True), (long_plan_tenant, False)):
        for age in (400, 10):
            hit = Interaction.objects.create(
                tenant=owner,
                kind="view",
                visitor="v",
                occurred_at=now - age * days,
                hit_id=f"{owner.pk}-{age}",
            )
            seeded.add(hit, goes=goes_if_old and age == 400)

    # Exports (30 days, files): an old finished one goes with its file; an old
    # running one and a recent one stay, and so do their files.
    from orders.models import SalesExport

    for status, age, goes in (("done", 40, True), ("running", 40, False), ("done", 1, False)):
        name = _file(f"exports/{tenant.pk}/sales-{status}-{age}.xlsx", age=age * days, now=now, size=200 + age)
        export = SalesExport.objects.create(
            tenant=tenant,
            date_from=date(2026, 1, 1),
            date_to=date(2026, 1, 31),
            status=status,
            file=name,
            finished_at=now - age * days if status == "done" else None,
        )
        seeded.add(_aged(export, "created_at", now - age * days), goes=goes)
        (seeded.doomed_files if goes else seeded.kept_files).append(name)

    for age, goes in ((450, True), (30, False)):
        name = _file(f"reports/report-{age}.pdf", age=age * days, now=now, size=300 + age)
        thumb = _file(f"reports/{tenant.pk}/thumbnails/report-{age}.png", age=age * days, now=now, size=10)
        report = MonthlyReport.objects.create(
            tenant=tenant,
            month=date(2025, 1, 1),
            status="done",
            file=name,
            thumbnail=thumb,
            finished_at=now - age * days,
        )
        seeded.add(_aged(report, "created_at", now - age * days), goes=goes)
        (seeded.doomed_files if goes else seeded.kept_files).extend([name, thumb])
    for age, goes in ((450, True), (30, False)):
        audit = LimitAudit.objects.create(
            tenant=tenant, resource="products", used=1, limit=10, level="ok", audited_at=now - age * days
        )
        seeded.add(audit, goes=goes)

    # Orphans: an old file no row references goes; a fresh one (being written) stays.
    seeded.doomed_files.append(_file(f"exports/{tenant.pk}/orphan.xlsx", age=3 * days, now=now, size=50))
    seeded.doomed_files.append(_file("reports/orphan.pdf", age=3 * days, now=now, size=60))
    seeded.kept_files.append(_file(f"exports/{tenant.pk}/being-written.xlsx", age=timedelta(minutes=5), now=now))
    return seeded


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def tenants() -> tuple[Tenant, Tenant]:
    long_plan = PlanFactory.create(retention_days={"interactions": 800})
    return TenantFactory.create(), TenantFactory.create(plan=long_plan)


def _ids(model: type[Model]) -> set[int]:
    return set(model._default_manager.values_list("pk", flat=True))


def test_dry_run_reports_exactly_what_the_purge_removes_and_the_rest_stays(
    media: Path, tenants: tuple[Tenant, Tenant]
) -> None:
    seeded = _seed(NOW, *tenants)
    before = {model: _ids(model) for model in {*seeded.doomed, *seeded.kept}}

    preview = retention.purge_preview(now=NOW)
    assert {model: _ids(model) for model in before} == before  # the dry run changed nothing
    run = retention.purge(trigger="test", now=NOW)

    assert run.status == PurgeRun.Status.DONE
    assert run.results == {name: figures.as_json() for name, figures in preview.items()}
    for model, doomed in seeded.doomed.items():
        assert not (doomed & _ids(model)), f"{model.__name__}: old rows left"
    for model, kept in seeded.kept.items():
        assert kept <= _ids(model), f"{model.__name__}: a row that must stay was deleted"
    assert run.results["outbox_messages"]["rows"] == 1
    assert not InboxEntry.objects.exists()  # the purged message's de-duplication row went with it
    assert run.results["interactions"]["rows"] == 1  # the long plan's tenant kept its old hit
    assert run.results["sales_exports"]["files"] == 1 and run.results["sales_exports"]["orphans"] == 1
    assert run.results["monthly_reports"]["files"] == 2 and run.results["monthly_reports"]["orphans"] == 1  # PDF + PNG
    assert run.results["sales_exports"]["file_bytes"] == 240 and run.results["monthly_reports"]["orphan_bytes"] == 60
    assert all(figures["bytes"] > 0 for figures in run.results.values() if figures["rows"])
    assert run.results["failed_jobs"]["oldest"] == (NOW - timedelta(days=40)).isoformat()
    assert not any(default_storage.exists(name) for name in seeded.doomed_files)
    assert all(default_storage.exists(name) for name in seeded.kept_files)

    again = retention.purge(trigger="test", now=NOW)  # idempotent: nothing more goes
    assert again.rows == 0 and again.total_bytes == 0


def test_two_purges_at_once_delete_each_row_once(media: Path, tenants: tuple[Tenant, Tenant]) -> None:
    tenant = tenants[0]
    old = NOW - timedelta(days=500)
    Interaction.objects.bulk_create(
        Interaction(tenant=tenant, kind="view", visitor="v", occurred_at=old, hit_id=f"h{n}") for n in range(6000)
    )
    runs: list[PurgeRun] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            runs.append(retention.purge(trigger="test", only=["interactions"], now=NOW))
        except BaseException as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    original = engine.BATCH_START
    engine.BATCH_START = 200  # many small batches, so the two runs interleave
    try:
        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        engine.BATCH_START = original
    assert not errors
    assert sorted(run.status for run in runs) == ["done", "done"]
    assert sum(run.results["interactions"]["rows"] for run in runs) == 6000
    assert not Interaction.objects.exists()


def test_tenant_scope_touches_only_that_tenants_data(media: Path, tenants: tuple[Tenant, Tenant]) -> None:
    tenant, other = tenants
    seeded = _seed(NOW, tenant, other)
    Interaction.objects.create(
        tenant=other, kind="view", visitor="v", occurred_at=NOW - timedelta(days=900), hit_id="ancient"
    )
    run = retention.purge(trigger="test", tenant=other.slug, now=NOW)
    assert run.results["interactions"]["rows"] == 1  # past the long plan's 800 days
    assert run.results["failed_jobs"]["rows"] == 0  # tenant data, but none of this tenant's
    assert run.results["audit_entries"]["skipped"] == "not tenant data"
    assert seeded.doomed[AuditEntry] <= _ids(AuditEntry)
    assert all(default_storage.exists(name) for name in seeded.doomed_files)  # no orphan sweep when scoped


def test_a_run_cut_into_slices_ends_with_the_same_figures(
    media: Path, tenants: tuple[Tenant, Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = _seed(NOW, *tenants)
    preview = retention.purge_preview(now=NOW)
    monkeypatch.setattr(engine, "BATCH_START", 1)  # so a slice is one row: many slices
    monkeypatch.setattr(engine, "BATCH_MIN", 1)
    run = retention.purge_start(trigger="test", now=NOW)
    slices = 1
    while not retention.purge_continue(run, budget=0):  # each slice stops after its first batch
        assert run.status == PurgeRun.Status.RUNNING
        slices += 1
    assert slices > 10
    assert run.results == {name: figures.as_json() for name, figures in preview.items()}
    assert not any(default_storage.exists(name) for name in seeded.doomed_files)


def test_the_nightly_job_runs_on_a_worker_until_done(
    redis_conn: Redis, monkeypatch: pytest.MonkeyPatch, tenants: tuple[Tenant, Tenant]
) -> None:
    from django.utils import timezone

    old = timezone.now() - timedelta(days=500)
    Interaction.objects.bulk_create(
        Interaction(tenant=tenants[0], kind="view", visitor="v", occurred_at=old, hit_id=f"n{n}") for n in range(3000)
    )
    purge_job.dispatch()
    result = run_worker("default", "--burst", "--sleep", "1")  # `maintenance` is routed to `default` in Vito's layout
    assert result.returncode == 0, result.stderr
    [run] = PurgeRun.objects.all()
    assert (run.status, run.trigger, run.results["interactions"]["rows"]) == ("done", "schedule", 3000)


def test_the_command_previews_deletes_and_refuses_bad_input(media: Path, tenants: tuple[Tenant, Tenant]) -> None:
    Interaction.objects.create(
        tenant=tenants[0], kind="view", visitor="v", occurred_at=NOW - timedelta(days=3650), hit_id="old"
    )
    out = StringIO()
    call_command("purge", "--dry-run", "--only", "interactions", stdout=out)
    assert "Would delete" in out.getvalue() and Interaction.objects.count() == 1
    assert "interactions" in out.getvalue() and " 1 " in out.getvalue()

    out = StringIO()
    call_command("purge", "--only", "interactions,audit_entries", stdout=out)
    assert not Interaction.objects.exists()
    assert PurgeRun.objects.get().only == "interactions,audit_entries"
    assert AuditEntry.objects.filter(action="purge").exists()

    for bad in (["--only", "nope"], ["--tenant", "nobody"]):
        with pytest.raises(CommandError) as refused:
            call_command("purge", *bad)
        assert refused.value.returncode == 2
    assert PurgeRun.objects.count() == 1  # the refused runs recorded nothing


def test_bad_retention_settings_and_plan_overrides_are_refused(settings: Any) -> None:
    settings.RETENTION_DAYS = {"interactions": 30, "nope": 5, "audit_entries": 0}
    assert sorted(str(error.id) for error in retention_days_are_known()) == ["queueing.E002", "queueing.E003"]
    bad: Any
    for bad in ({"nope": 5}, {"audit_entries": 30}, {"interactions": 0}, {"interactions": "many"}, []):
        with pytest.raises(ValidationError):
            validate_plan_retention(bad)
    validate_plan_retention({"interactions": 730, "sales_exports": 7})
    assert Plan(retention_days={"interactions": 730}).retention_days == {"interactions": 730}


def test_a_run_that_fails_or_is_abandoned_does_not_stay_running(
    media: Path, tenants: tuple[Tenant, Tenant], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.utils import timezone

    from queueing.retention.runs import purge_resume_or_start

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "delete", interrupted)
    with pytest.raises(KeyboardInterrupt):
        retention.purge(trigger="command", now=NOW)
    run = PurgeRun.objects.get(trigger="command")
    assert (run.status, run.error) == ("failed", "KeyboardInterrupt: ")
    monkeypatch.undo()

    # The nightly job's first slice died with its worker: the retry carries the same run on.
    first = purge_resume_or_start(trigger="schedule")
    assert purge_resume_or_start(trigger="schedule").pk == first.pk
    PurgeRun.objects.filter(pk=first.pk).update(started_at=timezone.now() - timedelta(days=2))
    second = purge_resume_or_start(trigger="schedule")  # a day later: the old one is given up
    assert second.pk != first.pk and PurgeRun.objects.get(pk=first.pk).status == "failed"
