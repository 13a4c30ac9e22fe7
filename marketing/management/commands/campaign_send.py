"""Send a draft campaign: ``campaign_send ID`` (the admin's "Send campaign").

The campaign becomes "sending" and its fan-out is queued through the outbox
(the relay and a worker must run): one delivery per active subscriber and one
SendCampaignEmail job each. Sending a campaign twice does nothing the second
time. ``--resume`` runs the fan-out of a campaign already sending here and now:
after a crash or a Redis loss it queues every delivery still open again
(deliveries already sent are not sent twice). ``--dry-run`` only counts.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketing.models import Campaign, CampaignDelivery, Subscriber
from marketing.selectors import campaign_progress
from marketing.services import campaign_fan_out, campaign_send


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign_id", type=int, metavar="ID", help="the campaign's id")
        parser.add_argument(
            "--resume", action="store_true", help="queue the open deliveries of a sending campaign again, now"
        )
        parser.add_argument("--dry-run", action="store_true", help="show what would happen, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.select_related("tenant").filter(pk=options["campaign_id"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with id {options['campaign_id']}", returncode=2)
        label = f"Campaign {campaign.pk} (“{campaign.subject}”, {campaign.tenant.slug})"
        if options["resume"]:
            self._resume(campaign, label, dry_run=options["dry_run"])
        elif options["dry_run"]:
            self._preview(campaign, label)
        else:
            result = campaign_send(campaign_id=campaign.pk)
            if result.started:
                self.stdout.write(f"{label}: sending; the fan-out is queued. Progress: /api/campaigns/{campaign.pk}/")
            else:
                sending = result.status == Campaign.Status.SENDING
                hint = " (--resume queues its open deliveries again)" if sending else ""
                self.stdout.write(f"{label} is already {result.status}; nothing done{hint}.")

    def _preview(self, campaign: Campaign, label: str) -> None:
        if campaign.status != Campaign.Status.DRAFT:
            self.stdout.write(f"{label} is {campaign.status}; sending it would do nothing.")
            return
        active = Subscriber.objects.filter(tenant_id=campaign.tenant_id, unsubscribed_at__isnull=True).count()
        self.stdout.write(f"{label}: would send to {active} active subscriber(s). Nothing changed.")

    def _resume(self, campaign: Campaign, label: str, *, dry_run: bool) -> None:
        if campaign.status == Campaign.Status.DRAFT:
            raise CommandError(f"{label} is a draft: send it first (without --resume)", returncode=2)
        if campaign.status == Campaign.Status.SENT:
            self.stdout.write(f"{label} is sent; nothing to resume.")
            return
        if dry_run:
            open_count = CampaignDelivery.objects.filter(
                campaign_id=campaign.pk, status__in=[CampaignDelivery.Status.PENDING, CampaignDelivery.Status.SENDING]
            ).count()
            self.stdout.write(f"{label}: {open_count} open deliveries would be queued again. Nothing changed.")
            return
        result = campaign_fan_out(campaign_id=campaign.pk)
        counts = campaign_progress(campaign_id=campaign.pk)
        self.stdout.write(
            f"{label}: {result.created} new deliveries, {result.dispatched} job(s) queued. "
            + ", ".join(f"{counts[k]} {k}" for k in ("total", "pending", "sending", "sent", "failed", "skipped"))
        )
