"""The outbound webhook event types of tenants (registered in ``TenantsConfig.ready()``),
and ``pick``, which the other domain apps' shapes use too.

A shape turns an outbox payload into the ``data`` a tenant's endpoint
receives: only the fields documented here, whatever else the payload carries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webhooks.outbound.catalog import EventType

Payload = dict[str, Any]


def pick(*fields: str) -> Callable[[Payload], Payload]:
    """A shape keeping ``fields`` (missing ones as None, so the documented shape never varies)."""

    def shape(payload: Payload) -> Payload:
        return {name: payload.get(name) for name in fields}

    return shape


SCAN_FIELDS = ("code", "occurred_at", "visitor", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_scan = pick(*SCAN_FIELDS)


def link_scans_data(payload: Payload) -> Payload:
    return {
        "count": payload.get("count", 0),
        "truncated": bool(payload.get("truncated")),
        "scans": [_scan(scan) for scan in payload.get("scans", [])],
    }


LINK_SCANNED = EventType(
    "link.scanned",
    "Tracked links were scanned (redirects of /t/<tenant>/r/<code>). Batched: at most one message a "
    "minute with the scans since the previous one, up to 1,000; `truncated` says more are waiting "
    "and go in the next message. `visitor` is a daily salted hash, never an IP address.",
    version=1,
    example={
        "count": 1,
        "truncated": False,
        "scans": [
            {
                "code": "spring-flyer",
                "occurred_at": "2026-03-14T09:26:53.589000+00:00",
                "visitor": "3f9a1c0d7e5b2a48",
                "utm_source": "flyer",
                "utm_medium": "print",
                "utm_campaign": "spring",
                "utm_term": "",
                "utm_content": "",
            }
        ],
    },
    shape=link_scans_data,
    batched=True,
)

EVENT_TYPES = [LINK_SCANNED]
