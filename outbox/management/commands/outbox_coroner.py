"""Find stuck outbox messages (Laravel's ``outbox:coroner``): pending longer
than ``--pending-after`` seconds (relay down), dispatched longer than
``--dispatched-after`` seconds whose jobs are gone from Redis (flushed, lost),
and dead ones. ``--redispatch`` sends pending and lost ones again (dead ones
wait for ``outbox_replay``). Exit status 1 when anything is stuck, for
monitoring; on the schedule every 5 minutes with ``--redispatch``.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from lib.arguments import non_negative_int, positive_int
from outbox.models import OutboxMessage
from outbox.services import outbox_coroner_run
from queueing.commands import audit_command


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        # Negative ages would call every message stuck (and --redispatch would send them all again).
        parser.add_argument("--pending-after", type=non_negative_int, default=60, help="seconds (default %(default)s)")
        parser.add_argument(
            "--dispatched-after", type=non_negative_int, default=300, help="seconds (default %(default)s)"
        )
        parser.add_argument("--redispatch", action="store_true", help="send pending and lost messages again")
        parser.add_argument("--limit", type=positive_int, default=20, help="rows shown per kind (default %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        report = outbox_coroner_run(
            pending_after=options["pending_after"],
            dispatched_after=options["dispatched_after"],
            redispatch=options["redispatch"],
        )
        now = timezone.now()
        for label, rows, stamp in (
            ("pending (relay not running?)", report.pending, "available_at"),
            ("dispatched, job lost", report.lost, "dispatched_at"),
            ("dead", report.dead, "created_at"),
        ):
            oldest = max(((now - getattr(r, stamp)).total_seconds() for r in rows), default=0)
            self.stdout.write(f"{label}: {len(rows)}" + (f" (oldest {oldest:.0f}s)" if rows else ""))
            for row in rows[: options["limit"]]:
                self._row(row)
        if options["redispatch"]:
            audit_command(
                "redispatch", "outbox", lost=len(report.lost), redispatched=report.redispatched, relayed=report.relayed
            )
        if options["redispatch"] and (report.pending or report.lost):
            self.stdout.write(f"Redispatched {report.redispatched} lost message(s); relay moved {report.relayed}.")
        if report.anything:
            sys.exit(1)

    def _row(self, row: OutboxMessage) -> None:
        self.stdout.write(
            f"  #{row.pk:<8} {row.event_type:24} {row.aggregate_type}:{row.aggregate_id:10} "
            f"attempts={row.attempts} {row.last_error[:60]}"
        )
