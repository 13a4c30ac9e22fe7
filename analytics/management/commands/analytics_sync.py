"""Compute the daily analytics figures (SyncTenantAnalytics) for a range of days:
a backfill after an outage of the workers, a fix, or for days before tracking
existed. The nightly run (SyncAnalyticsJob, 00:15) covers yesterday only.

Queues one job per approved tenant and day (re-running while they still wait
adds none), or only ``--tenant``'s; ``--inline`` computes in this process
instead. Every tenant-day is an upsert, so running a range twice is harmless.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.services import daily_stats_backfill
from tenants.models import Tenant

MAX_DAYS = 731  # two years: a typo in a year should not queue millions of jobs


def _day(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{flag}: {value!r} is not a date; use YYYY-MM-DD", returncode=2) from None


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD", help="first day")
        parser.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last day (default: --from)")
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant (whatever its status)")
        parser.add_argument("--inline", action="store_true", help="compute here instead of queueing jobs")

    def handle(self, *args: Any, **options: Any) -> None:
        first = _day(options["first"], "--from")
        last = _day(options["last"], "--to") if options["last"] else first
        if first > last:
            raise CommandError(f"--from {first} is after --to {last}; give the earlier day first", returncode=2)
        if last > timezone.localdate():
            raise CommandError(f"--to {last} is in the future; the last day with data is today", returncode=2)
        if (last - first).days >= MAX_DAYS:
            raise CommandError(f"at most {MAX_DAYS} days at a time; split the range", returncode=2)
        tenant_id = None
        # `is not None`: an empty --tenant '' (a script's unset variable) must not widen to every tenant.
        if options["tenant"] is not None:
            tenant_id = Tenant.objects.filter(slug=options["tenant"]).values_list("pk", flat=True).first()
            if tenant_id is None:
                raise CommandError(f"no tenant with slug {options['tenant']!r}", returncode=2)
        count = daily_stats_backfill(first=first, last=last, tenant_id=tenant_id, inline=options["inline"])
        days = (last - first).days + 1
        if options["inline"]:
            self.stdout.write(f"Computed {count} tenant-day(s) over {days} day(s), {first} to {last}.")
        else:
            self.stdout.write(f"Queued {count} SyncTenantAnalytics job(s) over {days} day(s), {first} to {last}.")
