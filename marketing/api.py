"""Tenant API for campaigns: send one, follow its progress."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.models import Campaign
from marketing.selectors import campaign_progress
from marketing.services import campaign_send
from tenants.api import tenant_for


def _body(request: Request, campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.pk,
        "subject": campaign.subject,
        "status": campaign.status,
        "created_at": campaign.created_at,
        "sent_at": campaign.sent_at,
        "progress": campaign_progress(campaign_id=campaign.pk),
        "status_url": request.build_absolute_uri(reverse("api-campaign-detail", args=[campaign.pk])),
    }


class CampaignDetailView(APIView):
    """``GET /api/campaigns/<id>/``: status and deliveries per status
    (pending, sending, sent, failed, skipped, total)."""

    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=campaign_id, tenant=tenant_for(request))
        return Response(_body(request, campaign))


class CampaignSendView(APIView):
    """``POST /api/campaigns/<id>/send/``: start sending (202 with a status URL).

    Idempotent: a campaign already sending answers 202 again and nothing is
    sent twice; a campaign already sent is a 409.
    """

    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=campaign_id, tenant=tenant_for(request))
        result = campaign_send(campaign_id=campaign.pk, tenant_id=campaign.tenant_id)
        campaign.refresh_from_db()
        if result.status == Campaign.Status.SENT and not result.started:
            body = _body(request, campaign) | {"detail": "This campaign has been sent already."}
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(_body(request, campaign) | {"started": result.started}, status=status.HTTP_202_ACCEPTED)
