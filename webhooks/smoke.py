"""The release smoke test's event (``manage.py webhook_smoke_test``): a signed
Standard Webhooks event processed end to end (outbox → relay → ``high``
worker) like a payment, touching nothing."""

from __future__ import annotations

from outbox.models import OutboxMessage
from webhooks.intake import AGGREGATE
from webhooks.models import WebhookEvent

SMOKE_TYPE = "smoke.test"
PROVIDER = "standard"


def smoke_handle(event: WebhookEvent) -> str:
    return "smoke test: processed by a worker (no order touched)"


def webhook_smoke_state(*, event_id: str) -> tuple[str, str] | None:
    """Where a smoke-test event is: (webhook event status, its outbox message's status or "").

    None when this database has no such event (the URL tested is another deployment's).
    """
    found = WebhookEvent.objects.filter(provider=PROVIDER, event_id=event_id).values_list("pk", "status").first()
    if found is None:
        return None
    message = (
        OutboxMessage.objects.filter(aggregate_type=AGGREGATE, aggregate_id=str(found[0]))
        .values_list("status", flat=True)
        .first()
    )
    return found[1], message or ""


def webhook_smoke_cleanup(*, event_id: str) -> int:
    """Delete one processed smoke-test event: it proves a release, it is not a payment.
    (Its outbox message is processed and goes with the nightly outbox prune.)"""
    deleted, _ = WebhookEvent.objects.filter(
        provider=PROVIDER, event_id=event_id, type=SMOKE_TYPE, status=WebhookEvent.Status.PROCESSED
    ).delete()
    return deleted
