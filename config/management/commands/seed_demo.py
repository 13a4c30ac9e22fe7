"""Load demo data: tenants on each plan, products, orders (some PENDING for
over 30 minutes, ready for ReleaseStaleOrders), appointments (some 23–24 h
ahead, ready for reminders), subscribers and a draft campaign.

Idempotent: a second run adds nothing. Larger numbers top the data up, with
bulk inserts, for benchmarks: ``seed_demo --tenants 10 --orders 100000``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from config.demo import SeedOptions, seed_demo


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected zero or more, got {number}")
    return number


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = SeedOptions()
        parser.add_argument(
            "--tenants", type=_count, default=defaults.tenants, help="number of tenants (default %(default)s)"
        )
        parser.add_argument(
            "--products", type=_count, default=defaults.products, help="products per tenant (default %(default)s)"
        )
        parser.add_argument(
            "--orders", type=_count, default=defaults.orders, help="orders per tenant (default %(default)s)"
        )
        parser.add_argument(
            "--appointments",
            type=_count,
            default=defaults.appointments,
            help="appointments per tenant (default %(default)s)",
        )
        parser.add_argument(
            "--subscribers",
            type=_count,
            default=defaults.subscribers,
            help="subscribers per tenant (default %(default)s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        seed = SeedOptions(
            tenants=options["tenants"],
            products=options["products"],
            orders=options["orders"],
            appointments=options["appointments"],
            subscribers=options["subscribers"],
        )
        verbose = options["verbosity"] >= 2
        started = time.monotonic()
        counts = seed_demo(options=seed, progress=lambda msg: self.stdout.write(msg) if verbose else None)
        if options["verbosity"] >= 1:
            added = ", ".join(f"{value:,} {name}" for name, value in vars(counts).items())
            self.stdout.write(
                self.style.SUCCESS(f"Demo data ready in {time.monotonic() - started:.1f}s; added {added}.")
            )
