"""Move committed outbox messages onto the queues (Laravel's ``outbox:process``).

Without ``--loop``: drain what is due and exit — the every-minute safety net
on the schedule. With ``--loop``: run continuously, woken by PostgreSQL
NOTIFY at each publishing commit (sub-second delivery), polling every second
for delayed messages. Any number of relays may run: rows are claimed with
SELECT … FOR UPDATE SKIP LOCKED, so no message is dispatched twice by a pass.
Messages of the same routes travel up to ``--per-job`` to a delivery job
(docs/outbox.md, "Batches").
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lib.arguments import positive_seconds
from outbox.relay import Relay
from outbox.services import outbox_relay_drain


def _batch(value: str, what: str = "batch size") -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if not 1 <= number <= 10_000:
        raise argparse.ArgumentTypeError(f"{what} must be 1..10000, got {number}")
    return number


def _per_job(value: str) -> int:
    return _batch(value, "messages per job")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="run continuously (the relay process)")
        parser.add_argument("--batch-size", type=_batch, default=500, help="messages per claim (default 500)")
        parser.add_argument(
            "--per-job",
            type=_per_job,
            help="messages one delivery job may carry (default OUTBOX_MESSAGES_PER_JOB; 1: a job per message)",
        )
        parser.add_argument("--max-time", type=positive_seconds, help="with --loop: exit after this many seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("outbox").setLevel("WARNING" if options["verbosity"] == 0 else "INFO")
        if options["loop"]:
            relay = Relay(batch_size=options["batch_size"], per_job=options["per_job"])
            if options["verbosity"]:
                self.stdout.write("Outbox relay running (LISTEN outbox_messages, poll every 1s).")
            moved = relay.loop(max_time=options["max_time"])
        else:
            moved = outbox_relay_drain(batch_size=options["batch_size"], per_job=options["per_job"])
        if options["verbosity"]:
            self.stdout.write(f"Dispatched {moved} message(s).")
