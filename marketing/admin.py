from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.http import HttpRequest

from marketing.models import Campaign, CampaignDelivery, Subscriber
from marketing.selectors import campaign_progress, campaigns_with_progress
from marketing.services import campaign_send


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin[Subscriber]):
    list_display = ("email", "tenant", "created_at", "unsubscribed_at")
    list_filter = (("unsubscribed_at", admin.EmptyFieldListFilter),)
    search_fields = ("email", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)


def _count(status: str, label: str) -> Callable[[Any, Campaign], int]:
    """A list column for one of the ``progress_*`` annotations (sortable)."""

    def column(_admin: Any, obj: Campaign) -> int:
        return int(getattr(obj, f"progress_{status}", 0))

    return admin.display(description=label, ordering=f"progress_{status}")(column)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    list_display = (
        "subject",
        "tenant",
        "status",
        "created_at",
        "sent_at",
        "recipients",
        "pending",
        "sent",
        "failed",
        "skipped",
    )
    list_filter = ("status",)
    search_fields = ("subject", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    # Status moves only through the send action (draft → sending → sent).
    readonly_fields = ("status", "sent_at", "progress")
    actions = ["send_campaign", "resume_sending"]

    recipients = _count("total", "recipients")
    # "sending" (claimed right now) counts as pending here: not yet sent.
    pending = _count("open", "pending")
    sent = _count("sent", "sent")
    failed = _count("failed", "failed")
    skipped = _count("skipped", "skipped")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        annotated = campaigns_with_progress(super().get_queryset(request))
        return annotated.annotate(progress_open=F("progress_pending") + F("progress_sending"))

    @admin.display(description="progress")
    def progress(self, obj: Campaign) -> str:
        if obj.pk is None:
            return "—"
        counts = campaign_progress(campaign_id=obj.pk)
        return ", ".join(f"{counts[k]} {k}" for k in ("total", "pending", "sending", "sent", "failed", "skipped"))

    @admin.action(description="Send campaign")
    def send_campaign(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        started, left = 0, []
        for campaign in queryset.order_by("pk"):
            result = campaign_send(campaign_id=campaign.pk)
            if result.started:
                started += 1
            else:
                left.append(f"“{campaign}” ({result.status})")
        if started:
            self.message_user(
                request, f"Sending {started} campaign(s); progress shows here as jobs run.", messages.SUCCESS
            )
        if left:
            self.message_user(request, f"Not drafts, left as they are: {', '.join(left)}.", messages.WARNING)

    @admin.action(description="Resume sending (queue open deliveries again)")
    def resume_sending(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        from marketing.jobs import fan_out_campaign

        sending = list(queryset.filter(status=Campaign.Status.SENDING).values_list("tenant_id", "pk"))
        fan_out_campaign.dispatch_many(sending)
        skipped = queryset.count() - len(sending)
        self.message_user(
            request,
            f"Queued the fan-out of {len(sending)} sending campaign(s) again: open deliveries get a job, "
            "sent ones are not sent twice." + (f" {skipped} not sending, left alone." if skipped else ""),
            messages.SUCCESS if sending else messages.WARNING,
        )


@admin.register(CampaignDelivery)
class CampaignDeliveryAdmin(admin.ModelAdmin[CampaignDelivery]):
    list_display = ("campaign", "subscriber", "status", "attempts", "sent_at", "last_error")
    list_filter = ("status", "campaign__status")
    search_fields = ("subscriber__email", "campaign__subject")
    list_select_related = ("campaign", "subscriber")
    raw_id_fields = ("campaign", "subscriber")
    readonly_fields = ("status", "attempts", "sent_at", "last_error", "claimed_by", "claimed_at")
