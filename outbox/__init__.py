"""The transactional outbox: ``outbox.publish(...)`` inside ``transaction.atomic()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outbox.models import OutboxMessage


def publish(
    event_type: str,
    payload: dict[str, Any],
    *,
    aggregate: tuple[str, object],
    tenant: object | None = None,
    headers: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Record an event in the caller's transaction (see outbox.services.outbox_publish)."""
    from outbox.services import outbox_publish

    return outbox_publish(event_type=event_type, payload=payload, aggregate=aggregate, tenant=tenant, headers=headers)
