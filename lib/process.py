"""This process: its resident memory, and a way to hold stop signals over a
few instructions that must not be split (a worker's claim)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGTERM/SIGINT for the few microseconds of a claim; they are
    delivered right after, to handlers that then see the job as owned."""
    held = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def rss_mb() -> float:
    """Resident memory in MB (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1_048_576
