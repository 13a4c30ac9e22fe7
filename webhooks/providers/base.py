"""A provider: how its requests are verified, and its dispatch table from
event type to the handler (registered from above) that acts on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from webhooks.models import WebhookEvent


class Verified(NamedTuple):
    """A request whose signature holds: the provider's event id, type and body."""

    event_id: str
    event_type: str
    body: dict[str, Any]


class Account(NamedTuple):
    """Who a per-account endpoint's URL names: ``key`` is stored with each of its
    events (a tenant's id), ``secrets`` verify them — newest first, several
    while a rotation's window is open."""

    key: str
    secrets: tuple[str, ...]


# The URL's account (a tenant's slug) → the Account, or None when there is no
# such account or it has no secret for this provider (a 404, nothing stored).
AccountLookup = Callable[[str], "Account | None"]
# (request headers, raw body, the URL's account or None for the platform's
# own endpoints) → the verified event, or InvalidWebhook.
Verify = Callable[[Mapping[str, str], bytes, "Account | None"], Verified]
# Applies a stored event inside the processing transaction and says what it did
# (kept as the event's outcome). InvalidWebhook fails the event for good;
# anything else is retried.
Handle = Callable[["WebhookEvent"], str]
# Checks a verified body at intake, so an envelope the handler could never act
# on is a 400 that stores nothing rather than a stored event that fails.
Validate = Callable[[Verified], object]


@dataclass(frozen=True)
class Handler:
    handle: Handle
    validate: Validate | None = None


@dataclass
class Provider:
    """``name`` is stored with each event: (provider, account, event id) is unique.

    ``process_event`` is the outbox event type its stored events are processed
    under, so a provider's work can have its own queue, timeout and tries.
    A per-account provider (one URL per tenant) has ``accounts``, registered
    from above with ``register_accounts``.
    """

    name: str
    verify: Verify
    process_event: str = "payment.webhook_received"
    per_account: bool = False
    handlers: dict[str, Handler] = field(default_factory=dict)
    accounts: AccountLookup | None = None

    def on(self, event_type: str, handle: Handle, *, validate: Validate | None = None) -> None:
        if event_type in self.handlers and self.handlers[event_type].handle is not handle:
            raise ValueError(f"{self.name} event {event_type!r} already has a handler")
        self.handlers[event_type] = Handler(handle, validate)
