"""Writes for outbound webhooks: endpoints (create, update, rotate the
secret, enable, disable), resend and recover. Views, admin actions and
commands call these; nothing else writes the rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import outbox
from webhooks.outbound import catalog, signing
from webhooks.outbound.addresses import check_url
from webhooks.outbound.models import Delivery, EndpointSecret, WebhookEndpoint

ROTATION_WINDOW = timedelta(hours=24)
DISABLED_EVENT = "webhook_endpoint.disabled"  # the owner's e-mail goes through the outbox


class UnknownEventType(ValueError):
    pass


class EndpointDisabled(Exception):
    """Resend and recover need an enabled endpoint."""


def _check_types(event_types: Sequence[str]) -> list[str]:
    unknown = sorted(set(event_types) - {t.name for t in catalog.event_types()})
    if unknown:
        raise UnknownEventType(f"unknown event type(s): {', '.join(unknown)}")
    return sorted(set(event_types))


@transaction.atomic
def endpoint_create(
    *, tenant_id: int, url: str, event_types: Sequence[str] = (), description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """The endpoint and its signing secret — the only time the secret is shown.
    ForbiddenURL or UnknownEventType when the request cannot be honoured."""
    check_url(url)
    endpoint = WebhookEndpoint.objects.create(
        tenant_id=tenant_id, url=url, event_types=_check_types(event_types), description=description
    )
    return endpoint, _add_secret(endpoint)


def _add_secret(endpoint: WebhookEndpoint) -> str:
    secret = signing.new_secret()
    encrypted, hint = signing.seal(secret)
    EndpointSecret.objects.create(endpoint=endpoint, encrypted=encrypted, hint=hint)
    return secret


@transaction.atomic
def endpoint_update(
    endpoint: WebhookEndpoint,
    *,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
) -> WebhookEndpoint:
    if url is not None and url != endpoint.url:
        check_url(url)
        endpoint.url = url
    if event_types is not None:
        endpoint.event_types = _check_types(event_types)
    if description is not None:
        endpoint.description = description
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new current secret; the ones in use keep signing for ROTATION_WINDOW."""
    now = timezone.now()
    live = EndpointSecret.objects.filter(endpoint=endpoint)
    live.filter(expires_at__isnull=True).update(expires_at=now + ROTATION_WINDOW)
    live.filter(expires_at__lte=now).delete()  # long expired: nothing signs with them
    return _add_secret(endpoint)


def live_secrets(endpoint_id: int, at: datetime) -> list[str]:
    """The encrypted secrets that sign a delivery made at ``at``, newest first."""
    return list(
        EndpointSecret.objects.filter(endpoint_id=endpoint_id)
        .exclude(expires_at__lte=at)
        .values_list("encrypted", flat=True)
    )


@transaction.atomic
def endpoint_enable(endpoint: WebhookEndpoint) -> None:
    """Enable again; failed deliveries stay failed (recover sends them)."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, disabled_reason="", disabled_at=None, failing_since=None, owner_notified_at=None
    )
    endpoint.refresh_from_db()


@transaction.atomic
def endpoint_disable(endpoint_id: int, *, reason: str, automatic: bool = False) -> bool:
    """Disable and fail its pending deliveries (recover brings them back).

    Only the call that flips the flag acts, so concurrent senders that all
    see the endpoint fail disable it, and e-mail its owner, once. An automatic
    disable (5 days of failures, 410 Gone) tells the tenant's owner."""
    now = timezone.now()
    flipped = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).update(
        enabled=False, disabled_reason=reason[:300], disabled_at=now
    )
    if not flipped:
        return False
    Delivery.objects.filter(endpoint_id=endpoint_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED
    )
    if automatic:
        endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
        if endpoint.owner_notified_at is None:
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(owner_notified_at=now)
            outbox.publish(
                DISABLED_EVENT,
                {"endpoint_id": endpoint_id, "url": endpoint.url, "reason": reason[:300]},
                aggregate=("webhook_endpoint", endpoint_id),
                tenant=endpoint.tenant_id,
            )
    return True


def _restart(deliveries: Sequence[int], endpoint: WebhookEndpoint) -> int:
    from webhooks.outbound.jobs import wake

    if not endpoint.enabled:
        raise EndpointDisabled(f"endpoint {endpoint.pk} is disabled: enable it first")
    count = Delivery.objects.filter(pk__in=list(deliveries)).update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
    if count:
        transaction.on_commit(lambda: wake.dispatch(endpoint.pk))
    return count


@transaction.atomic
def delivery_resend(endpoint: WebhookEndpoint, *, msg_id: str) -> int:
    """Send one message to the endpoint again, on a fresh retry schedule (same ``webhook-id``)."""
    ids = Delivery.objects.filter(endpoint=endpoint, message__msg_id=msg_id).values_list("pk", flat=True)
    return _restart(list(ids), endpoint)


@transaction.atomic
def deliveries_recover(endpoint: WebhookEndpoint, *, since: datetime) -> int:
    """Send again every message to the endpoint that failed, created since ``since``."""
    ids = Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.FAILED, created_at__gte=since).values_list(
        "pk", flat=True
    )
    return _restart(list(ids), endpoint)


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next attempt after ``attempts`` failed ones, or None
    when the schedule is spent (Svix's: immediately, 5 s, 5 min, 30 min, 2 h,
    5 h, 10 h, 10 h — each counted from the failure before it)."""
    if attempts >= len(SCHEDULE):
        return None
    return SCHEDULE[attempts] * float(settings.OUTBOUND_WEBHOOK_RETRY_SCALE)


SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
