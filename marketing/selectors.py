"""Reads: a campaign's progress."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from marketing.models import Campaign, CampaignDelivery

STATUSES = [choice.value for choice in CampaignDelivery.Status]


def campaign_progress(*, campaign_id: int) -> dict[str, int]:
    """Deliveries per status (every status present, zeros included) and ``total``.

    One GROUP BY over the (campaign, status) index.
    """
    counts = dict.fromkeys(STATUSES, 0)
    rows = (
        CampaignDelivery.objects.filter(campaign_id=campaign_id)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    for status, n in rows:
        counts[status] = n
    counts["total"] = sum(counts[s] for s in STATUSES)
    return counts


def campaigns_with_progress(queryset: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """The campaigns annotated ``progress_<status>`` and ``progress_total`` (for list pages)."""
    counts = {f"progress_{status}": Count("deliveries", filter=Q(deliveries__status=status)) for status in STATUSES}
    return queryset.annotate(**counts, progress_total=Count("deliveries"))
