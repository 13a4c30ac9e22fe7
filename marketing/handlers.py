"""Outbox handlers of the marketing app (routes registered in apps.py)."""

from __future__ import annotations

import uuid

from outbox.routes import Event


def campaign_send_requested(event: Event) -> None:
    """``campaign.send_requested`` → the ``fan_out_campaign`` job.

    Enqueued at once, not on commit: this handler runs inside the inbox
    transaction, and an enqueue after that commit could fail with nothing
    left to retry it. Enqueued now, a Redis failure fails this delivery and
    the outbox retries it; a rollback after the enqueue only means a second
    fan-out later, which changes nothing (deliveries are unique, sends are
    claimed). The fan-out needs nothing from this transaction: the campaign
    became "sending" when the message was published.
    """
    from marketing.jobs import fan_out_campaign
    from queueing.dispatch import enqueue_batch_rollback_unsafe

    args = (int(event.payload["tenant_id"]), int(event.payload["campaign_id"]))
    enqueue_batch_rollback_unsafe([(fan_out_campaign, args, uuid.uuid4().hex)])
