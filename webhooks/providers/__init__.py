"""The providers we take events from, each in its own module with its
verification and its dispatch table. Adding a provider is a module here and a
line in PROVIDERS; its handlers are registered by the app that owns the work.
"""

from __future__ import annotations

from webhooks.providers import calcom, retell, standard, stripe
from webhooks.providers.base import Account, AccountLookup, Handle, Handler, Provider, Validate, Verified

__all__ = [
    "PROVIDERS",
    "Account",
    "AccountLookup",
    "Handle",
    "Handler",
    "Provider",
    "Validate",
    "Verified",
    "handler_for",
    "register_accounts",
    "register_handler",
]

PROVIDERS: dict[str, Provider] = {
    p.name: p for p in (standard.PROVIDER, stripe.PROVIDER, calcom.PROVIDER, retell.PROVIDER)
}


def register_accounts(provider: str, lookup: AccountLookup) -> None:
    """Where a per-account provider finds the account its URL names and that
    account's secrets (call it from the owning app's ``AppConfig.ready()``)."""
    found = PROVIDERS.get(provider)
    if found is None or not found.per_account:
        per_account = sorted(name for name, p in PROVIDERS.items() if p.per_account)
        raise ValueError(f"{provider!r} is not a per-account webhook provider; those are: {', '.join(per_account)}")
    found.accounts = lookup


def register_handler(provider: str, event_type: str, handle: Handle, *, validate: Validate | None = None) -> None:
    """Act on ``event_type`` from ``provider`` (call it from ``AppConfig.ready()``).

    Events of a type with no handler are stored as ignored; ``validate``, when
    given, runs at intake so a body the handler could never act on is a 400.
    """
    try:
        PROVIDERS[provider].on(event_type, handle, validate=validate)
    except KeyError:
        raise ValueError(f"unknown webhook provider {provider!r}; known: {', '.join(sorted(PROVIDERS))}") from None


def handler_for(provider: str, event_type: str) -> Handler | None:
    found = PROVIDERS.get(provider)
    return found.handlers.get(event_type) if found is not None else None
