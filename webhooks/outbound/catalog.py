"""The event types tenants can subscribe to, registered from above.

A domain app declares each type in its ``AppConfig.ready``::

    register_event_type(EventType("order.paid", "An order was paid.", example={...}, shape=order_data))

The outbox message of that name is then fanned out to the tenant's
endpoints (webhooks.outbound.fanout). ``shape`` turns the outbox payload into
the documented ``data`` of the delivery (default: the payload as is), so what
leaves the platform is what the catalog documents, for that tenant only.
Types with ``batched=True`` (``link.scanned``) are published by their own
job, once per tenant per minute, not per change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Shape = Callable[[dict[str, Any]], dict[str, Any]]
FANOUT_HANDLER = "webhooks.outbound.fanout.fan_out"
DELIVERY_QUEUE = "webhook-deliveries"


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    version: int = 1
    example: dict[str, Any] = field(default_factory=dict)  # a documented example of ``data``
    shape: Shape | None = None
    batched: bool = False
    # The outbox event this type comes from, when it has another name.
    source_event: str | None = None


_types: dict[str, EventType] = {}
_by_source: dict[str, EventType] = {}
_tenant_contact: list[Callable[[int], str]] = []


def register_event_type(event_type: EventType) -> None:
    """Offer ``event_type`` to tenants and fan its outbox messages out to their endpoints."""
    from outbox.routes import route

    _types[event_type.name] = event_type
    source = event_type.source_event or event_type.name
    _by_source[source] = event_type
    # The fan-out is cheap (rows only): it runs where deliveries do.
    route(source, FANOUT_HANDLER, queue=DELIVERY_QUEUE)


def event_types() -> list[EventType]:
    return sorted(_types.values(), key=lambda t: t.name)


def event_type(name: str) -> EventType | None:
    return _types.get(name)


def for_source(outbox_event: str) -> EventType | None:
    return _by_source.get(outbox_event)


def register_tenant_contact(lookup: Callable[[int], str]) -> None:
    """How to reach a tenant's owner (tenant id → e-mail), for the disabled-endpoint notice."""
    _tenant_contact[:] = [lookup]


def tenant_contact(tenant_id: int) -> str:
    return _tenant_contact[0](tenant_id) if _tenant_contact else ""
