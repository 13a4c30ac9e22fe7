"""The e-mail to a tenant's owner when one of its endpoints was disabled
automatically (5 days of failures, or 410 Gone): an outbox handler on the
logical queue ``notifications``, so the notice is sent even if the worker
that disabled the endpoint died just after, and at most once per disable."""

from __future__ import annotations

import logging

from lib.mail import send_templated
from outbox.routes import Event
from webhooks.outbound.catalog import tenant_contact

log = logging.getLogger(__name__)


def endpoint_disabled_notice(event: Event) -> None:
    if event.tenant_id is None:
        return
    to = tenant_contact(event.tenant_id)
    if not to:
        log.warning("webhook endpoint %s disabled; tenant %s has no owner e-mail", event.aggregate_id, event.tenant_id)
        return
    send_templated(
        "webhook_endpoint_disabled",
        dict(event.payload),
        subject=f"Webhook endpoint disabled: {event.payload['url']}",
        to=[to],
    )
