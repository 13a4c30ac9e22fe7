"""Processing: a stored event applied by its provider's handler, on a worker,
inside the outbox delivery's transaction; and the operator's "process again"."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

import outbox
from outbox.routes import Event
from webhooks.intake import AGGREGATE, PROCESS_EVENT
from webhooks.models import WebhookEvent
from webhooks.providers import PROVIDERS, handler_for
from webhooks.transport import InvalidWebhook


def handle_webhook_event(event: Event) -> None:
    """Outbox handler of every provider's process event (webhooks/apps.py routes
    each to the logical queue ``webhooks``, with the provider's timeout and tries)."""
    webhook_process(webhook_event_id=int(event.payload["webhook_event_id"]))


def webhook_process(*, webhook_event_id: int) -> str:
    """Apply one stored event; raising makes the job retry.

    The row lock makes redeliveries of one event wait for each other, and a
    processed event is never applied again.
    """
    event = WebhookEvent.objects.select_for_update().get(pk=webhook_event_id)
    event.attempts += 1
    if event.status == WebhookEvent.Status.PROCESSED:
        return "already processed"
    handler = handler_for(event.provider, event.type)
    try:
        if handler is None:
            # Known when stored; this deployment no longer acts on the type.
            raise InvalidWebhook(f"no handler for {event.provider} {event.type!r} events")
        outcome = handler.handle(event)
    except InvalidWebhook as exc:
        # Stored, signed, but unusable: record why; retrying cannot help.
        event.status, event.last_error = WebhookEvent.Status.FAILED, str(exc)
        event.save(update_fields=["status", "last_error", "attempts"])
        return f"failed: {exc}"
    event.status, event.processed_at, event.last_error = WebhookEvent.Status.PROCESSED, timezone.now(), outcome
    event.save(update_fields=["status", "processed_at", "last_error", "attempts"])
    return outcome


def webhook_reprocess(*, ids: list[int]) -> int:
    """Operator's "process again": events some handler acts on get a fresh processing message."""
    count = 0
    with transaction.atomic():
        for event in WebhookEvent.objects.select_for_update().filter(pk__in=ids):
            if handler_for(event.provider, event.type) is None:
                continue
            WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.RECEIVED, last_error="")
            process_event = PROVIDERS[event.provider].process_event if event.provider in PROVIDERS else PROCESS_EVENT
            outbox.publish(process_event, {"webhook_event_id": event.pk}, aggregate=(AGGREGATE, event.pk))
            count += 1
    return count
