"""Inbound webhooks' figures for the operations console, /metrics, alerts and queue_health."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from queueing.status import StatusReport
from webhooks.models import WebhookEvent

UNPROCESSED_AFTER = timedelta(minutes=10)


def webhook_status() -> StatusReport:
    now = timezone.now()
    Status = WebhookEvent.Status
    # Served by webhook_status_idx (status, received_at) and the received_at range.
    figures = WebhookEvent.objects.filter(received_at__gte=now - timedelta(hours=1)).aggregate(
        received_last_hour=Count("id"),
        failed_last_hour=Count("id", filter=Q(status=Status.FAILED)),
    )
    late = WebhookEvent.objects.filter(status=Status.RECEIVED, received_at__lt=now - UNPROCESSED_AFTER).count()
    failed_total = WebhookEvent.objects.filter(status=Status.FAILED).count()
    problems = []
    if late:
        problems.append(f"{late} webhook event(s) received over {UNPROCESSED_AFTER} ago and not processed")
    return StatusReport(
        title="Inbound webhooks",
        figures={
            **{k: float(v) for k, v in figures.items()},
            "unprocessed_late": float(late),
            "failed": float(failed_total),
        },
        problems=problems,
        link="/admin/webhooks/webhookevent/",
    )
