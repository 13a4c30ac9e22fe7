"""The providers' dispatch tables: what a handler registered from above gets,
and what intake and processing do with a type that has none."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from outbox.models import OutboxMessage
from webhooks.intake import PROCESS_EVENT, webhook_receive
from webhooks.models import WebhookEvent
from webhooks.processing import webhook_process
from webhooks.providers import PROVIDERS, Verified, handler_for, register_handler
from webhooks.transport import InvalidWebhook

pytestmark = pytest.mark.django_db

TYPE = "test.widget_made"


@pytest.fixture
def widget_handler() -> Iterator[list[str]]:
    """A handler on the standard provider for a type no app handles, removed afterwards."""
    seen: list[str] = []

    def handle(event: WebhookEvent) -> str:
        if event.payload.get("broken"):
            raise InvalidWebhook("widget payload is broken")
        seen.append(event.event_id)
        return f"widget {event.payload['widget']} made"

    def validate(verified: Verified) -> None:
        if "widget" not in verified.body:
            raise InvalidWebhook("no widget")

    register_handler("standard", TYPE, handle, validate=validate)
    yield seen
    del PROVIDERS["standard"].handlers[TYPE]


def test_a_registered_type_is_stored_with_its_work_and_processed_by_its_handler(widget_handler: list[str]) -> None:
    received = webhook_receive(provider="standard", event_id="msg_w1", event_type=TYPE, payload={"widget": "cog"})
    assert received.created and received.status == WebhookEvent.Status.RECEIVED
    assert OutboxMessage.objects.filter(event_type=PROCESS_EVENT, aggregate_id=str(received.pk)).count() == 1
    assert webhook_process(webhook_event_id=received.pk) == "widget cog made"
    assert widget_handler == ["msg_w1"]
    assert webhook_process(webhook_event_id=received.pk) == "already processed"
    assert widget_handler == ["msg_w1"]


def test_a_handlers_invalid_webhook_fails_the_event_for_good(widget_handler: list[str]) -> None:
    received = webhook_receive(provider="standard", event_id="msg_w2", event_type=TYPE, payload={"broken": True})
    assert webhook_process(webhook_event_id=received.pk) == "failed: widget payload is broken"
    event = WebhookEvent.objects.get(pk=received.pk)
    assert (event.status, event.last_error, event.attempts) == ("failed", "widget payload is broken", 1)


def test_a_type_without_a_handler_is_stored_as_ignored_with_no_work() -> None:
    received = webhook_receive(provider="stripe", event_id="evt_x", event_type="customer.created", payload={})
    assert received.status == WebhookEvent.Status.IGNORED
    assert not OutboxMessage.objects.exists()


def test_a_stored_event_whose_handler_went_away_fails_with_the_reason(widget_handler: list[str]) -> None:
    received = webhook_receive(provider="standard", event_id="msg_w3", event_type=TYPE, payload={"widget": "cog"})
    del PROVIDERS["standard"].handlers[TYPE]
    try:
        assert webhook_process(webhook_event_id=received.pk) == f"failed: no handler for standard {TYPE!r} events"
    finally:
        register_handler("standard", TYPE, lambda event: "")


def test_registering_for_an_unknown_provider_or_twice_is_an_error(widget_handler: list[str]) -> None:
    with pytest.raises(ValueError, match="unknown webhook provider 'paypal'; known: calcom, retell, standard, stripe"):
        register_handler("paypal", "PAYMENT.CAPTURE.COMPLETED", lambda event: "")
    with pytest.raises(ValueError, match="already has a handler"):
        register_handler("standard", TYPE, lambda event: "")


def test_the_apps_register_their_handlers_in_ready() -> None:
    """orders (payments), tenants (subscriptions) and webhooks (smoke test)."""
    owners: dict[tuple[str, str], str] = {
        ("standard", "payment.succeeded"): "orders.payment_events",
        ("stripe", "charge.refunded"): "orders.payment_events",
        ("stripe", "invoice.payment_failed"): "tenants.billing",
        ("standard", "smoke.test"): "webhooks.smoke",
    }
    for (provider, event_type), module in owners.items():
        handler = handler_for(provider, event_type)
        assert handler is not None and handler.handle.__module__ == module


def test_delivery_jobs_naming_the_handlers_old_path_run_the_new_one() -> None:
    """Before this app existed the handler lived in orders.webhook_services."""
    from outbox.routes import current_handler, routes_for

    assert [r.handler for r in routes_for(PROCESS_EVENT)] == ["webhooks.processing.handle_webhook_event"]
    assert current_handler("orders.webhook_services.handle_webhook_event") == "webhooks.processing.handle_webhook_event"


def test_the_admin_pages_old_address_redirects_to_the_new_one(client: Any) -> None:
    response = client.get("/admin/orders/webhookevent/12/change/?x=1")
    assert response.status_code == 302 and response["Location"] == "/admin/webhooks/webhookevent/12/change/?x=1"
