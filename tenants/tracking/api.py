"""Tenant API: erasing one visitor's tracking data (tenants/tracking/erasure.py)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.api import tenant_for
from tenants.models import ErasureRequest
from tenants.schema import VALIDATION_ERRORS, tenant_responses
from tenants.tracking.erasure import VISITOR, erasure_request


class ErasureRequestSerializer(serializers.Serializer[dict[str, Any]]):
    visitor = serializers.CharField(
        help_text="The visitor hash of the hits to erase (16 lowercase hexadecimal characters).",
        validators=[RegexValidator(VISITOR, message="not a visitor hash: 16 lowercase hexadecimal characters")],
    )


class ErasureStatusSerializer(serializers.ModelSerializer[ErasureRequest]):
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = ErasureRequest
        fields = ["id", "visitor", "status", "erased", "created_at", "finished_at", "status_url"]

    def get_status_url(self, obj: ErasureRequest) -> str:
        request = self.context["request"]
        return str(request.build_absolute_uri(reverse("api-privacy-erase-detail", args=[obj.pk])))


class ErasureListView(APIView):
    """``POST /api/privacy/erase/`` ``{"visitor": "<hash>"}``: erase every tracking hit of
    one visitor (202; a job does it, twice: now and after the next buffer drain)."""

    @extend_schema(
        request=ErasureRequestSerializer,
        responses=tenant_responses({202: ErasureStatusSerializer, 400: VALIDATION_ERRORS}),
    )
    def post(self, request: Request) -> Response:
        tenant = tenant_for(request)
        serializer = ErasureRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        erasure = erasure_request(tenant=tenant, visitor=serializer.validated_data["visitor"], user_id=request.user.pk)
        body = ErasureStatusSerializer(erasure, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ErasureDetailView(APIView):
    """``GET /api/privacy/erase/<id>/``: the request's status and how many hits were erased."""

    @extend_schema(responses=tenant_responses({200: ErasureStatusSerializer}))
    def get(self, request: Request, erasure_id: int) -> Response:
        erasure = get_object_or_404(ErasureRequest, pk=erasure_id, tenant=tenant_for(request))
        return Response(ErasureStatusSerializer(erasure, context={"request": request}).data)
