"""Jobs owned by the queue runtime itself."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def echo(value: T) -> T:
    """A no-op that returns its argument: proves a queue round trip end to end."""
    return value
