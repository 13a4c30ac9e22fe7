"""Background jobs of tracking and analytics: RecordInteraction, SyncAnalyticsJob,
SyncTenantAnalytics. Thin: parse the plain arguments, call one service."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from queueing.definitions import PermanentError, job


def yesterday() -> date:
    return timezone.localdate() - timedelta(days=1)


def _parse_day(day: str) -> date:
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise PermanentError(f"not a date: {day!r} (expected YYYY-MM-DD)") from None


def _day_key(day: str | None = None) -> str:
    # The schedule dispatches without arguments; the day is resolved when the lock
    # is taken, so "the nightly run" and an explicit run for yesterday share one lock.
    return day or yesterday().isoformat()


@job(queue="ingestion", timeout=120, tries=3, backoff=[10, 30], unique_for=300)
def record_interactions() -> int:
    """RecordInteraction: drain the tracking buffer into ``Interaction`` rows.

    Every minute on the schedule; unique so runs do not pile up behind a slow
    one (two at once would still be correct: the drain is idempotent per hit).
    """
    from tenants.tracking import interactions_record

    return interactions_record()


@job(queue="default", timeout=600, tries=3, backoff=[30, 120], unique_for=3600, unique_key=_day_key)
def sync_analytics(day: str | None = None) -> int:
    """SyncAnalyticsJob: queue one SyncTenantAnalytics per approved tenant for
    ``day`` (ISO date; default yesterday, computed when the job runs). Unique per day."""
    from analytics.services import daily_stats_dispatch

    return daily_stats_dispatch(day=_parse_day(day) if day else yesterday())


@job(queue="default", timeout=120, tries=3, backoff=[10, 60], unique_for=3600)
def sync_tenant_analytics(tenant_id: int, day: str) -> None:
    """SyncTenantAnalytics: upsert one tenant's figures for one day (idempotent).
    Unique per (tenant, day) while queued or running, so a second fan-out of the
    same day adds nothing."""
    from analytics.services import daily_stats_sync

    daily_stats_sync(tenant_id=tenant_id, day=_parse_day(day))


def _report_failed(exc: BaseException, tenant_id: int, report_id: int) -> None:
    from analytics.models import MonthlyReport

    MonthlyReport.objects.filter(pk=report_id).update(status=MonthlyReport.Status.FAILED, error=str(exc)[:2000])


@job(queue="default", timeout=300, tries=2, backoff=[60], on_failure=_report_failed)
def generate_pdf_report(tenant_id: int, report_id: int) -> None:
    """GeneratePdfReportJob: render the tenant's month as a PDF, store it and e-mail the link."""
    from analytics.reports import report_generate

    report_generate(tenant_id=tenant_id, report_id=report_id)


# Unique until it starts: a burst of requests queues one job, and a report
# regenerated while its old thumbnail renders still gets its own job queued.
@job(queue="thumbnails", timeout=60, tries=3, backoff=[5, 30], unique_for=300, unique_until_processing=True)
def generate_report_thumbnail(tenant_id: int, report_id: int) -> None:
    """GenerateReportThumbnail: the report's first page as a PNG, the moment the PDF
    is stored. Unique, so a burst of requests for one thumbnail queues it once."""
    from analytics.thumbnails import thumbnail_generate

    thumbnail_generate(tenant_id=tenant_id, report_id=report_id)


@job(queue="default", timeout=1800, tries=1, unique_for=3600)
def audit_tenant_limits() -> dict[str, int]:
    """AuditTenantLimits: every approved tenant's usage against its plan, daily.
    Unique so a slow run and a manual one do not overlap (two at once would still
    e-mail once: each notice is claimed by a unique row). Not retried as a whole:
    a failed e-mail releases its claim and the next run sends it."""
    from analytics.limits import limits_audit

    summary = limits_audit()
    return {
        "tenants": summary.tenants,
        "warnings": summary.warnings,
        "over": summary.over,
        "sent": summary.sent,
        "failed": summary.failed,
    }
