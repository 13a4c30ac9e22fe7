"""Tenant API for campaigns: send one, follow its progress."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.models import Campaign
from marketing.selectors import campaign_progress
from marketing.services import campaign_send
from tenants.api import tenant_for
from tenants.schema import tenant_responses


class CampaignProgressSerializer(serializers.Serializer[dict[str, int]]):
    pending = serializers.IntegerField(min_value=0)
    sending = serializers.IntegerField(min_value=0)
    sent = serializers.IntegerField(min_value=0)
    failed = serializers.IntegerField(min_value=0)
    skipped = serializers.IntegerField(min_value=0)
    total = serializers.IntegerField(min_value=0)


# Documents the body _body() builds (the schema's only use of it).
class CampaignStatusSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    subject = serializers.CharField()
    status = serializers.ChoiceField(choices=Campaign.Status.choices)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    progress = CampaignProgressSerializer()
    status_url = serializers.URLField()


class CampaignSendSerializer(CampaignStatusSerializer):
    started = serializers.BooleanField(help_text="False when this campaign was already sending.")


class CampaignSentSerializer(CampaignStatusSerializer):
    detail = serializers.CharField()


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

    @extend_schema(responses=tenant_responses({200: CampaignStatusSerializer}))
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=campaign_id, tenant=tenant_for(request))
        return Response(_body(request, campaign))


class CampaignSendView(APIView):
    """``POST /api/campaigns/<id>/send/``: start sending (202 with a status URL).

    Idempotent: a campaign already sending answers 202 again and nothing is
    sent twice; a campaign already sent is a 409.
    """

    @extend_schema(request=None, responses=tenant_responses({202: CampaignSendSerializer, 409: CampaignSentSerializer}))
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=campaign_id, tenant=tenant_for(request))
        result = campaign_send(campaign_id=campaign.pk, tenant_id=campaign.tenant_id)
        campaign.refresh_from_db()
        if result.status == Campaign.Status.SENT and not result.started:
            body = _body(request, campaign) | {"detail": "This campaign has been sent already."}
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(_body(request, campaign) | {"started": result.started}, status=status.HTTP_202_ACCEPTED)
