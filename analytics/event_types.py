"""The outbound webhook event types of analytics (registered in ``AnalyticsConfig.ready()``).
The payload is written by analytics/reports.py when a report's PDF is stored."""

from __future__ import annotations

from tenants.event_types import pick
from webhooks.outbound.catalog import EventType

EVENT_TYPES = [
    EventType(
        "report.ready",
        "A monthly PDF report finished: its month (YYYY-MM), number of pages and size in bytes. Fetch "
        "the download link (signed, expiring) from `status_url` with the API's authentication. "
        "Sent once per report.",
        version=1,
        example={
            "report_id": 58,
            "month": "2026-03",
            "pages": 3,
            "size": 48213,
            "status_url": "https://app.example.com/api/reports/58/",
        },
        shape=pick("report_id", "month", "pages", "size", "status_url"),
    ),
]
