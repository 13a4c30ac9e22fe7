"""Cancel PENDING orders older than ``--older-than`` minutes (default 30) and
restore their stock (ReleaseStaleOrders). Global, or one tenant with
``--tenant SLUG``. ``--dry-run`` counts. Also runs every 15 minutes on the
schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.services import order_release_stale
from tenants.models import Tenant


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant")
        parser.add_argument("--older-than", type=int, default=30, metavar="MINUTES", help="default %(default)s")
        parser.add_argument("--dry-run", action="store_true", help="count, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["older_than"] < 1:
            raise CommandError("--older-than must be at least 1 minute", returncode=2)
        tenant_id = None
        # `is not None`: an empty --tenant '' (a script's unset variable) must not widen to every tenant.
        if options["tenant"] is not None:
            tenant_id = Tenant.objects.filter(slug=options["tenant"]).values_list("pk", flat=True).first()
            if tenant_id is None:
                raise CommandError(f"no tenant with slug {options['tenant']!r}", returncode=2)
        result = order_release_stale(
            older_than=timedelta(minutes=options["older_than"]), tenant_id=tenant_id, dry_run=options["dry_run"]
        )
        verb = "Would release" if options["dry_run"] else "Released"
        self.stdout.write(f"{verb} {result.released} stale order(s).")
