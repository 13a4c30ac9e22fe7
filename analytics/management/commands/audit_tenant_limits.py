"""Audit tenants' usage against their plans' limits now (AuditTenantLimits runs
daily at 01:30 UTC): after changing a plan, or to see where a tenant stands.

Audits every approved tenant, or only ``--tenant`` (whatever its status); records
the figures and e-mails owners who newly reached 90% or went over, once per month,
resource and level, like the daily run. ``--dry-run`` prints the figures only.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.limits import limits_audit
from tenants.models import Tenant


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant (whatever its status)")
        parser.add_argument("--dry-run", action="store_true", help="measure and print; record nothing, send nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant_id = None
        # `is not None`: an empty --tenant '' (a script's unset variable) must not widen to every tenant.
        if options["tenant"] is not None:
            tenant_id = Tenant.objects.filter(slug=options["tenant"]).values_list("pk", flat=True).first()
            if tenant_id is None:
                raise CommandError(
                    f"no tenant with slug {options['tenant']!r}; see the tenants in the admin", returncode=2
                )
        summary = limits_audit(tenant_id=tenant_id, notify=not options["dry_run"], record=not options["dry_run"])
        if options["verbosity"] >= 2 or options["dry_run"]:
            for audit in summary.audits:
                if options["verbosity"] >= 2 or audit.level != "ok":
                    ratio = f"{audit.ratio:.0%}" if audit.ratio is not None else "-"
                    self.stdout.write(
                        f"{audit.tenant.slug}: {audit.resource} {audit.used}/{audit.limit} ({ratio}) {audit.level}"
                    )
        self.stdout.write(
            f"Audited {summary.tenants} tenant(s): {summary.warnings} resource(s) at 90% or more, "
            f"{summary.over} over; {summary.sent} e-mail(s) sent, {summary.failed} failed."
            + (" (dry run: nothing recorded or sent)" if options["dry_run"] else "")
        )
