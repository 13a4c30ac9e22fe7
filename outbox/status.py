"""The outbox's figures for the operations console, /metrics, alerts and queue_health."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from outbox.models import OutboxMessage
from outbox.services import outbox_counts
from queueing.status import StatusReport


def outbox_status() -> StatusReport:
    counts = outbox_counts()
    now = timezone.now()
    # Lag: how long the oldest *due* message has waited (a delayed retry is not late).
    due = OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING, available_at__lte=now)
    oldest = due.aggregate(at=Min("available_at"))["at"]
    lag = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    limit = settings.OUTBOX_LAG_ALERT_SECONDS
    problems = []
    if counts["stuck"]:
        problems.append(f"{counts['stuck']} outbox message(s) stuck (see outbox_coroner)")
    if lag > limit:
        problems.append(f"oldest pending outbox message waited {lag:.0f}s (limit {limit}s)")
    return StatusReport(
        title="Outbox",
        figures={**{k: float(v) for k, v in counts.items()}, "lag_seconds": round(lag, 1)},
        problems=problems,
        link="/admin/outbox/outboxmessage/",
    )
