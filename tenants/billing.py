"""The tenant's own subscription to the platform, kept current by Stripe's
invoice and subscription events (registered from ``TenantsConfig.ready()``).
A tenant is found by ``metadata.tenant_id`` or its Stripe customer id."""

from __future__ import annotations

from tenants.services import tenant_subscription_set
from webhooks import fields
from webhooks.models import WebhookEvent
from webhooks.providers.stripe import event_object
from webhooks.transport import InvalidWebhook

SUBSCRIPTION_STATUS = {
    "invoice.payment_succeeded": "active",
    "invoice.payment_failed": "past_due",
    "customer.subscription.deleted": "canceled",
}


def stripe_subscription_event(event: WebhookEvent) -> str:
    obj = event_object(event)
    metadata = obj.get("metadata") or {}
    status = SUBSCRIPTION_STATUS[event.type]
    if metadata.get("tenant_id") is not None:
        updated = tenant_subscription_set(status=status, tenant_id=fields.integer(metadata["tenant_id"], "tenant id"))
    elif obj.get("customer"):
        updated = tenant_subscription_set(status=status, stripe_customer_id=str(obj["customer"]))
    else:
        raise InvalidWebhook("subscription event names neither metadata.tenant_id nor a customer")
    if not updated:
        raise InvalidWebhook("no tenant for this subscription event")
    return f"tenant subscription {status}"
