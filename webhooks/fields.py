"""Parsers for values inside a provider's payload, shared by the handlers of
every app: each raises InvalidWebhook naming the field, so a stored event
that cannot be acted on is failed with a reason an operator can read."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from webhooks.transport import InvalidWebhook


def integer(value: Any, field: str) -> int:
    """An id sent as a number or a string of digits (metadata values are strings)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidWebhook(f"{field} must be an integer, got {value!r}") from None


def amount(value: Any, field: str) -> Decimal:
    """A non-negative decimal amount in major units."""
    try:
        parsed = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidWebhook(f"{field} is not a decimal amount: {value!r}") from None
    if not parsed.is_finite() or parsed < 0:
        raise InvalidWebhook(f"{field} must be a non-negative amount, got {value!r}")
    return parsed


def currency(value: Any) -> str:
    """An ISO 4217 code, upper-cased."""
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise InvalidWebhook(f"currency must be an ISO 4217 code, got {value!r}")
    return value.upper()
