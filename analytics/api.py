"""Tenant API: the requesting tenant's daily figures and monthly PDF reports."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.validators import RegexValidator
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.jobs import yesterday
from analytics.models import MonthlyReport
from analytics.reports import month_start, report_request
from analytics.thumbnails import thumbnail_request
from tenants.api import tenant_for
from tenants.downloads import download_url
from tenants.models import TenantDailyStats
from tenants.schema import VALIDATION_ERRORS, tenant_responses

MAX_DAYS = 366


class DailyStatsSerializer(serializers.ModelSerializer[TenantDailyStats]):
    class Meta:
        model = TenantDailyStats
        fields = ["date", "views", "unique_visitors", "redirects", "orders", "revenue"]


# ``from`` is a Python keyword, so the response's shape is declared inline (documentation only).
DAILY_STATS_RESPONSE = inline_serializer(
    "DailyStatsRange",
    fields={
        "tenant": serializers.SlugField(),
        "from": serializers.DateField(),
        "to": serializers.DateField(),
        "days": DailyStatsSerializer(many=True),
    },
)
RANGE_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (YYYY-MM-DD); default 29 days before `to`."),
    OpenApiParameter(
        "to", OpenApiTypes.DATE, description=f"Last day (YYYY-MM-DD); default yesterday. At most {MAX_DAYS} days."
    ),
]


class BadRange(ValueError):
    pass


def _range(params: dict[str, str]) -> tuple[date, date]:
    """``from`` / ``to`` (YYYY-MM-DD, inclusive); default the 30 days up to yesterday."""
    parsed: dict[str, date] = {}
    for name in ("from", "to"):
        if params.get(name):
            try:
                parsed[name] = date.fromisoformat(params[name])
            except ValueError:
                raise BadRange(f"{name}: {params[name]!r} is not a date; use YYYY-MM-DD") from None
    last = parsed.get("to") or yesterday()
    first = parsed.get("from") or _days_before(last, 29)
    if first > last:
        raise BadRange("from must not be after to")
    if (last - first).days >= MAX_DAYS:
        raise BadRange(f"at most {MAX_DAYS} days at a time")
    return first, last


def _days_before(day: date, days: int) -> date:
    """``day`` minus ``days``, but not before the calendar's first day: a ``to``
    early in year 1 overflowed into a 500 (found by chaos/test_api_fuzz.py)."""
    return day - timedelta(days=min(days, (day - date.min).days))


class DailyStatsView(APIView):
    """``GET /api/analytics/?from=YYYY-MM-DD&to=YYYY-MM-DD``: one row per day that
    has been computed (SyncTenantAnalytics runs nightly for yesterday)."""

    @extend_schema(
        parameters=RANGE_PARAMETERS,
        responses=tenant_responses({200: DAILY_STATS_RESPONSE, 400: VALIDATION_ERRORS}),
    )
    def get(self, request: Request) -> Response:
        tenant = tenant_for(request)
        try:
            first, last = _range({key: str(request.query_params.get(key, "")) for key in ("from", "to")})
        except BadRange as exc:
            return Response({"detail": str(exc)}, status=400)
        rows = TenantDailyStats.objects.filter(tenant=tenant, date__gte=first, date__lte=last).order_by("date")
        return Response(
            {"tenant": tenant.slug, "from": first, "to": last, "days": DailyStatsSerializer(rows, many=True).data}
        )


class ReportRequestSerializer(serializers.Serializer[dict[str, Any]]):
    # The pattern also documents the format in the OpenAPI schema (a client, or a
    # fuzzer, learns what a month looks like); validate_month checks the rest.
    month = serializers.CharField(
        help_text="YYYY-MM",
        validators=[RegexValidator(r"^[0-9]{4}-(0?[1-9]|1[0-2])$", message="not a month; use YYYY-MM, e.g. 2026-10")],
    )

    def validate_month(self, value: str) -> date:
        try:
            month = month_start(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if month > timezone.localdate():
            raise serializers.ValidationError("that month has not started yet")
        return month


# Documents the body _report_status() builds (the schema's only use of it).
class ReportStatusSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=MonthlyReport.Status.choices)
    month = serializers.CharField(help_text="YYYY-MM")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.URLField()
    download_url = serializers.URLField(required=False, help_text="Signed, expiring link; only when done.")
    thumbnail_url = serializers.URLField(
        required=False, help_text="Signed, expiring link to the first page as a PNG; once it is rendered."
    )
    error = serializers.CharField(required=False, help_text="Only when failed.")


def _report_status(request: Request, report: MonthlyReport) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": report.pk,
        "status": report.status,
        "month": f"{report.month:%Y-%m}",
        "created_at": report.created_at,
        "finished_at": report.finished_at,
        "status_url": request.build_absolute_uri(reverse("api-report-detail", args=[report.pk])),
    }
    if report.status == MonthlyReport.Status.DONE:
        link = download_url(kind="report", object_id=report.pk, tenant_id=report.tenant_id)
        body["download_url"] = request.build_absolute_uri(link)
    if report.thumbnail:
        link = download_url(kind="report-thumbnail", object_id=report.pk, tenant_id=report.tenant_id)
        body["thumbnail_url"] = request.build_absolute_uri(link)
    if report.status == MonthlyReport.Status.FAILED:
        body["error"] = report.error
    return body


class ReportListView(APIView):
    """``POST /api/reports/`` ``{"month": "YYYY-MM"}``: request the month's PDF (202 with a status URL)."""

    @extend_schema(
        request=ReportRequestSerializer,
        responses=tenant_responses({202: ReportStatusSerializer, 400: VALIDATION_ERRORS}),
    )
    def post(self, request: Request) -> Response:
        tenant = tenant_for(request)
        serializer = ReportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = report_request(
            tenant=tenant,
            month=serializer.validated_data["month"],
            email=getattr(request.user, "email", ""),
            user_id=request.user.pk,
        )
        return Response(_report_status(request, report), status=status.HTTP_202_ACCEPTED)


class ReportDetailView(APIView):
    """``GET /api/reports/<id>/``: status and, when ready, the signed download URL."""

    @extend_schema(responses=tenant_responses({200: ReportStatusSerializer}))
    def get(self, request: Request, report_id: int) -> Response:
        report = get_object_or_404(MonthlyReport, pk=report_id, tenant=tenant_for(request))
        return Response(_report_status(request, report))


class ReportThumbnailView(APIView):
    """``GET /api/reports/<id>/thumbnail/``: 302 to the PNG's signed link; 202 while it
    is being made (a finished report without one has it queued now); 409 for a failed report."""

    @extend_schema(
        responses=tenant_responses(
            {
                302: OpenApiResponse(description="Redirect (`Location`) to the signed, expiring PNG link."),
                202: ReportStatusSerializer,
                409: OpenApiResponse(description="The report failed: it has no first page to show."),
            }
        )
    )
    def get(self, request: Request, report_id: int) -> Response | HttpResponseRedirect:
        report = get_object_or_404(MonthlyReport, pk=report_id, tenant=tenant_for(request))
        if report.thumbnail:
            link = download_url(kind="report-thumbnail", object_id=report.pk, tenant_id=report.tenant_id)
            return HttpResponseRedirect(request.build_absolute_uri(link))
        if report.status == MonthlyReport.Status.FAILED:
            return Response({"detail": "The report failed; it has no thumbnail."}, status=status.HTTP_409_CONFLICT)
        thumbnail_request(report)  # queued on `thumbnails` when the report is done; else the report queues it
        return Response(_report_status(request, report), status=status.HTTP_202_ACCEPTED)
