"""The outbox handler of every registered event type: one message per event
(its ``webhook-id``), one delivery per enabled endpoint of the event's
tenant that wants the type, and the senders woken after commit.

It runs inside the outbox's inbox transaction, so an event is fanned out
exactly once however often the relay delivers it, and only for a committed
change (a rolled-back one never reached the outbox)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from django.db import transaction

from outbox.routes import Event
from webhooks.outbound import catalog
from webhooks.outbound.models import Delivery, OutboundMessage, WebhookEndpoint


def new_msg_id() -> str:
    """``msg_`` + milliseconds (hex, so ids sort by time) + 64 random bits."""
    return f"msg_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def envelope(event_type: catalog.EventType, event: Event) -> dict[str, Any]:
    data = event_type.shape(event.payload) if event_type.shape else dict(event.payload)
    return {
        "type": event_type.name,
        "version": event_type.version,
        "timestamp": event.created_at.isoformat(),
        "data": data,
    }


def fan_out(event: Event) -> None:
    event_type = catalog.for_source(event.event_type)
    if event_type is None or event.tenant_id is None:
        return
    endpoints = [
        e.pk
        for e in WebhookEndpoint.objects.filter(tenant_id=event.tenant_id, enabled=True)
        if e.wants(event_type.name)
    ]
    if not endpoints:
        return
    message, created = OutboundMessage.objects.get_or_create(
        source_id=event.id,
        defaults={
            "msg_id": new_msg_id(),
            "tenant_id": event.tenant_id,
            "event_type": event_type.name,
            "payload": envelope(event_type, event),
        },
    )
    if not created:
        return
    Delivery.objects.bulk_create(Delivery(message=message, endpoint_id=pk) for pk in endpoints)
    transaction.on_commit(lambda: wake_endpoints(endpoints))


def wake_endpoints(endpoint_ids: list[int]) -> None:
    from webhooks.outbound.jobs import send_deliveries
    from webhooks.outbound.sending import lanes

    send_deliveries.dispatch_many([(pk, lane) for pk in endpoint_ids for lane in lanes()])
