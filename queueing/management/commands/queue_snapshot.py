"""Store job metrics history (Horizon's ``horizon:snapshot``): the last complete
5-minute periods of per-minute Redis counters become MetricSnapshot rows per
queue, job and tenant, and rows older than QUEUE_METRICS_RETENTION_DAYS are
trimmed. Scheduled every 5 minutes; safe to run again (it upserts)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lib.arguments import positive_int
from queueing.dispatch import redis_connection
from queueing.services import metrics_snapshot

MAX_PERIODS = 288  # a day of 5-minute periods


def _periods(value: str) -> int:
    # A type, not choices=range(...): argparse would list all 288 choices in the error.
    number = positive_int(value)
    if number > MAX_PERIODS:
        raise argparse.ArgumentTypeError(f"at most {MAX_PERIODS} periods (a day), got {value!r}")
    return number


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--catch-up",
            type=_periods,
            default=3,
            metavar="N",
            help="how many complete 5-minute periods to (re)write, 1..288 (default 3: survives a missed run)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = metrics_snapshot(conn=redis_connection(), catch_up=options["catch_up"])
        self.stdout.write(f"Snapshot stored: {rows} row(s) over {options['catch_up']} period(s).")
