"""Tenant API for orders: sales exports."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.exports import export_request
from orders.media import InvalidImage, product_set_image
from orders.models import Product, SalesExport
from tenants.api import tenant_for
from tenants.downloads import download_url
from tenants.schema import VALIDATION_ERRORS, tenant_responses


class ExportRequestSerializer(serializers.Serializer[dict[str, Any]]):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    format = serializers.ChoiceField(choices=SalesExport.Format.choices, default=SalesExport.Format.XLSX)

    def validate_date_to(self, value: date) -> date:
        # The export covers whole days up to the start of the next one, and
        # 9999-12-31 has no next day: the job would fail on it (found by
        # chaos/test_api_fuzz.py), so say so now instead of accepting it.
        if value >= date.max:
            raise serializers.ValidationError(f"must be before {date.max.isoformat()}")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError("date_from must not be after date_to")
        return attrs


# Documents the body _status() builds (the schema's only use of it).
class ExportStatusSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=SalesExport.Status.choices)
    format = serializers.ChoiceField(choices=SalesExport.Format.choices)
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    rows_done = serializers.IntegerField(min_value=0)
    rows_total = serializers.IntegerField(min_value=0)
    progress = serializers.FloatField(min_value=0, max_value=1)
    status_url = serializers.URLField()
    download_url = serializers.URLField(required=False, help_text="Signed, expiring link; only when done.")
    error = serializers.CharField(required=False, help_text="Only when failed.")


class ProductImageUploadSerializer(serializers.Serializer[dict[str, Any]]):
    image = serializers.ImageField(
        help_text="An image file (any format Pillow reads); at most 10 MB and 40 megapixels."
    )


class ProductImageSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    image = serializers.URLField()
    blurhash = serializers.CharField(allow_null=True, help_text="Computed in the background; null until then.")


def _status(request: Request, export: SalesExport) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": export.pk,
        "status": export.status,
        "format": export.format,
        "date_from": export.date_from,
        "date_to": export.date_to,
        "rows_done": export.rows_done,
        "rows_total": export.rows_total,
        "progress": export.progress,
        "status_url": request.build_absolute_uri(reverse("api-export-detail", args=[export.pk])),
    }
    if export.status == SalesExport.Status.DONE:
        link = download_url(kind="export", object_id=export.pk, tenant_id=export.tenant_id)
        body["download_url"] = request.build_absolute_uri(link)
    if export.status == SalesExport.Status.FAILED:
        body["error"] = export.error
    return body


class ExportListView(APIView):
    """``POST /api/exports/``: request an export (202 with a status URL)."""

    @extend_schema(
        request=ExportRequestSerializer,
        responses=tenant_responses({202: ExportStatusSerializer, 400: VALIDATION_ERRORS}),
    )
    def post(self, request: Request) -> Response:
        tenant = tenant_for(request)
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        export = export_request(
            tenant=tenant,
            date_from=serializer.validated_data["date_from"],
            date_to=serializer.validated_data["date_to"],
            fmt=serializer.validated_data["format"],
            email=getattr(request.user, "email", ""),
            user_id=request.user.pk,
        )
        return Response(_status(request, export), status=status.HTTP_202_ACCEPTED)


class ExportDetailView(APIView):
    """``GET /api/exports/<id>/``: status, progress and, when ready, the download URL."""

    @extend_schema(responses=tenant_responses({200: ExportStatusSerializer}))
    def get(self, request: Request, export_id: int) -> Response:
        export = get_object_or_404(SalesExport, pk=export_id, tenant=tenant_for(request))
        return Response(_status(request, export))


class ProductImageView(APIView):
    """``PUT /api/products/<id>/image/`` (multipart, field ``image``): stored at once,
    BlurHash computed in the background."""

    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ProductImageUploadSerializer},
        responses=tenant_responses({200: ProductImageSerializer, 400: VALIDATION_ERRORS}),
    )
    def put(self, request: Request, product_id: int) -> Response:
        product = get_object_or_404(Product, pk=product_id, tenant=tenant_for(request))
        upload = request.FILES.get("image")
        if upload is None:
            return Response({"image": ["send the file in the multipart field 'image'"]}, status=400)
        try:
            product_set_image(product=product, upload=upload)
        except InvalidImage as exc:
            return Response({"image": [str(exc)]}, status=400)
        return Response(
            {
                "id": product.pk,
                "image": request.build_absolute_uri(product.image.url),
                "blurhash": product.blurhash or None,
            }
        )
