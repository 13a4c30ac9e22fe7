"""The outbound webhook event types of marketing (registered in ``MarketingConfig.ready()``).
The payload is written by marketing/services.py when a campaign's last delivery settles."""

from __future__ import annotations

from tenants.event_types import pick
from webhooks.outbound.catalog import EventType

EVENT_TYPES = [
    EventType(
        "campaign.finished",
        "A campaign finished sending: every recipient's e-mail was sent, failed for good, or skipped "
        "(unsubscribed before it went out). `name` is the campaign's subject. Sent once per campaign.",
        version=1,
        example={
            "campaign_id": 12,
            "name": "Spring sale",
            "sent": 4810,
            "failed": 23,
            "skipped": 7,
            "finished_at": "2026-03-14T10:02:11.402000+00:00",
        },
        shape=pick("campaign_id", "name", "sent", "failed", "skipped", "finished_at"),
    ),
]
