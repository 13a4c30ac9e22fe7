"""Publishing: an event is written in the caller's transaction (with a
NOTIFY that wakes the relays when it commits). docs/outbox.md."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from outbox.models import OutboxMessage

log = logging.getLogger(__name__)

Status = OutboxMessage.Status


NOTIFY_CHANNEL = "outbox_messages"


class OutsideTransaction(RuntimeError):
    pass


def _key(value: object) -> int | None:
    if value is None:
        return None
    pk = getattr(value, "pk", value)
    return int(pk) if isinstance(pk, int) else None


def outbox_publish(
    *,
    event_type: str,
    payload: dict[str, Any],
    aggregate: tuple[str, object],
    tenant: object | None = None,
    headers: dict[str, Any] | None = None,
    available_at: datetime | None = None,
) -> OutboxMessage:
    """Write an event in the caller's transaction; it leaves only if that commits.

    ``aggregate`` is ``("order", order.pk)``; ``tenant`` a Tenant or its id.
    """
    if not connection.in_atomic_block:
        raise OutsideTransaction(
            f"outbox.publish({event_type!r}) outside transaction.atomic(): the message must be "
            "written in the same transaction as the change it announces, or one can exist without the other."
        )
    aggregate_type, aggregate_id = aggregate
    message = OutboxMessage.objects.create(
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=str(getattr(aggregate_id, "pk", aggregate_id)),
        tenant_id=_key(tenant),
        payload=payload,  # JSONField refuses what JSON cannot carry
        headers=headers or {},
        **({"available_at": available_at} if available_at else {}),
    )
    # Delivered to the listening relay when (and only if) this transaction
    # commits: the relay wakes within milliseconds instead of polling.
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    return message


def outbox_publish_many(
    *, event_type: str, events: Sequence[tuple[tuple[str, object], int | None, dict[str, Any]]]
) -> int:
    """``publish`` for set-based writers: ``(aggregate, tenant_id, payload)``
    rows in one INSERT and one NOTIFY, still in the caller's transaction."""
    if not connection.in_atomic_block:
        raise OutsideTransaction(f"outbox.publish_many({event_type!r}) outside transaction.atomic()")
    now = timezone.now()
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                event_type=event_type,
                aggregate_type=aggregate[0],
                aggregate_id=str(aggregate[1]),
                tenant_id=tenant_id,
                payload=payload,
                created_at=now,
                available_at=now,
            )
            for aggregate, tenant_id, payload in events
        ],
        batch_size=1000,
    )
    if events:
        notify()
    return len(events)


def outbox_insert_and_publish(
    *, insert_sql: str, params: Sequence[Any], event_type: str, aggregate_type: str, payload_key: str
) -> list[tuple[Any, ...]]:
    """One statement: run ``insert_sql`` (an INSERT … RETURNING id, …) and publish
    an outbox message ``{payload_key: id}`` for each row it returns, with the
    NOTIFY — atomic on its own, one round trip. For hot intake paths (webhooks)
    where BEGIN / INSERT / INSERT / NOTIFY / COMMIT would be five.

    Returns the rows of ``insert_sql`` (empty when it inserted nothing).
    """
    sql = f"""
        WITH inserted AS ({insert_sql}),
        message AS (
            INSERT INTO outbox_outboxmessage (event_type, aggregate_type, aggregate_id, payload, headers,
                                              created_at, available_at, status, attempts, last_error, job_id)
            SELECT %s, %s, inserted.id::text, jsonb_build_object(%s, inserted.id), '{{}}'::jsonb,
                   now(), now(), 'pending', 0, '', ''
              FROM inserted
            RETURNING id
        ),
        notified AS (SELECT pg_notify('{NOTIFY_CHANNEL}', '') FROM message)
        SELECT inserted.*, (SELECT count(*) FROM notified) FROM inserted
    """  # noqa: S608 - insert_sql is the caller's constant SQL, never user input
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, event_type, aggregate_type, payload_key])
        return [row[:-1] for row in cursor.fetchall()]


def notify() -> None:
    """Wake the listening relays (delivered when the transaction commits)."""
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
