"""Outbound deliveries' figures for the queue dashboard, /metrics, alerts and
queue_health: deliveries per minute, the failure rate of attempts, disabled
endpoints, and deliveries overdue (due long ago and not attempted — no
worker serves ``webhook-deliveries``)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from queueing.status import StatusReport
from webhooks.outbound.models import Delivery, DeliveryAttempt, WebhookEndpoint

WINDOW = timedelta(minutes=5)
OVERDUE_AFTER = timedelta(minutes=5)


def outbound_status() -> StatusReport:
    now = timezone.now()
    # Served by outbound_attempt_at_idx: the last five minutes only.
    attempts = DeliveryAttempt.objects.filter(at__gte=now - WINDOW).aggregate(
        total=Count("id"), failed=Count("id", filter=Q(succeeded=False))
    )
    total, failed = attempts["total"], attempts["failed"]
    overdue = Delivery.objects.filter(
        status=Delivery.Status.PENDING, next_attempt_at__lt=now - OVERDUE_AFTER, endpoint__enabled=True
    ).count()
    problems = []
    if overdue:
        problems.append(
            f"{overdue} webhook deliveries due over {OVERDUE_AFTER} ago and not attempted "
            "(is a worker serving webhook-deliveries?)"
        )
    return StatusReport(
        title="Outbound webhooks",
        figures={
            "deliveries_per_minute": (total - failed) / (WINDOW.total_seconds() / 60),
            "failure_rate": failed / total if total else 0.0,
            "endpoints_disabled": float(WebhookEndpoint.objects.filter(enabled=False).count()),
            "overdue": float(overdue),
        },
        problems=problems,
        link="/admin/webhooks/delivery/",
    )
