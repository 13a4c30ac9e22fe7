"""The domain apps' outbound webhook event types, as registered in their AppConfig.ready()."""

from __future__ import annotations

from webhooks.outbound.catalog import event_type

OURS = [
    "order.placed",
    "order.paid",
    "order.cancelled",
    "payment.refunded",
    "export.ready",
    "report.ready",
    "campaign.finished",
    "appointment.created",
    "appointment.cancelled",
    "appointment.rescheduled",
    "link.scanned",
]


def test_every_type_is_documented_and_its_example_is_exactly_what_its_shape_keeps() -> None:
    for name in OURS:
        registered = event_type(name)
        assert registered is not None, f"{name} is not registered"
        assert registered.version == 1 and registered.description and registered.example, name
        assert registered.shape is not None and registered.shape(registered.example) == registered.example, name
        # Whatever else a payload carries (bookkeeping, other ids) stays behind.
        assert registered.shape({**registered.example, "internal": 1}) == registered.example, name
        assert registered.batched == (name == "link.scanned"), name
