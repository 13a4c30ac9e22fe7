"""argparse types for management commands: a bad value is a usage error
(exit status 2 with the command's usage line), never a traceback or a silent
"everything"."""

from __future__ import annotations

import argparse


def positive_seconds(value: str) -> float:
    """argparse type for a duration: a bad value is a usage error (exit 2)."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def _whole_number(value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, got {value!r}")
    return number


def non_empty(value: str) -> str:
    """argparse type for a selector (queue, event type): an empty value is a usage
    error, so an unset shell variable (``--queue "$Q"``) cannot widen a selection
    to everything."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty (an unset shell variable?)")
    return value


def positive_int(value: str) -> int:
    """argparse type for a limit, count or id (1 or more): a bad value is a usage error (exit 2)."""
    return _whole_number(value, 1)


def non_negative_int(value: str) -> int:
    """argparse type for an age in whole seconds or hours (0 or more): a bad value is a usage error."""
    return _whole_number(value, 0)
