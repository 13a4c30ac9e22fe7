"""Text from what Redis and RQ hand back: bytes (no decode_responses), str, an
enum (RQ's states), or None."""

from __future__ import annotations


def as_text(value: object) -> str:
    """``value`` as a str: bytes decoded as UTF-8, an enum by its value, None as ""."""
    raw = getattr(value, "value", value)
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else str(raw)
