"""Tenant API for outbound webhooks: ``/api/webhook-endpoints/`` (CRUD; the
signing secret is shown once, at creation and on ``rotate-secret``), each
endpoint's delivery log, ``resend`` one message and ``recover`` every failed
one since a time, and ``/api/webhook-event-types/`` (the catalog). Thin:
webhooks.outbound.services does the writes; every query is scoped to the
request's tenant (another tenant's id is a 404). docs/outbound-webhooks.md."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.api import tenant_for
from tenants.schema import ERROR_DETAIL, VALIDATION_ERRORS, tenant_responses
from webhooks.outbound import catalog, services
from webhooks.outbound.addresses import ForbiddenURL
from webhooks.outbound.models import Delivery, DeliveryAttempt, WebhookEndpoint


class _FlatList(serializers.ListField):
    """A list whose items' errors come back as one flat list of messages ("item 3:
    …"), the documented 400 shape, instead of a dict keyed by index."""

    def run_child_validation(self, data: list[Any]) -> list[Any]:
        try:
            return super().run_child_validation(data)  # type: ignore[no-any-return]
        except ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            raise ValidationError(
                [
                    f"item {i}: {m}"
                    for i, errors in exc.detail.items()
                    for m in (errors if isinstance(errors, list) else [errors])
                ]
            ) from None


class WebhookEndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    # Names are checked against the catalog in validate_event_types, so an error
    # is one flat message (a child field's would be keyed by list index).
    event_types = _FlatList(
        # Blank and null names are refused below, with the others (the child's own
        # errors would be keyed by list index, which the documented 400 shape is not).
        child=serializers.CharField(allow_blank=True, allow_null=True),
        required=False,
        help_text="Event types to receive (see /api/webhook-event-types/); empty: every type.",
    )
    secret_hint = serializers.SerializerMethodField(help_text="The last characters of the current secret.")

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "secret_hint",
            "created_at",
        ]
        read_only_fields = ["disabled_at", "failing_since", "created_at"]

    def get_secret_hint(self, endpoint: WebhookEndpoint) -> str:
        # From the prefetched secrets (a .filter() here would query once per endpoint listed).
        current = next((x for x in endpoint.secrets.all() if x.expires_at is None), None)
        return f"whsec_…{current.hint}" if current else ""

    def validate_event_types(self, value: list[str | None]) -> list[str]:
        if any(not name for name in value):
            raise ValidationError("event type names must not be blank")
        known = {t.name for t in catalog.event_types()}
        unknown = sorted({name for name in value if name} - known)
        if unknown:
            raise ValidationError(f"unknown event type(s): {', '.join(unknown)}")
        return [name for name in value if name]


class CreatedWebhookEndpointSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret: shown this once only.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookAttemptSerializer(serializers.ModelSerializer[DeliveryAttempt]):
    class Meta:
        model = DeliveryAttempt
        fields = ["at", "status_code", "duration_ms", "response", "error", "succeeded"]


class WebhookDeliverySerializer(serializers.ModelSerializer[Delivery]):
    msg_id = serializers.CharField(source="message.msg_id")
    event_type = serializers.CharField(source="message.event_type")
    attempt_log = WebhookAttemptSerializer(many=True)

    class Meta:
        model = Delivery
        fields = ["id", "msg_id", "event_type", "status", "attempts", "next_attempt_at", "created_at", "attempt_log"]


class _Scoped:
    """Mixed into the views below: the request's tenant's endpoints only."""

    request: Any

    def endpoints(self) -> QuerySet[WebhookEndpoint]:
        return WebhookEndpoint.objects.filter(tenant_id=tenant_for(self.request).pk).prefetch_related("secrets")

    def endpoint(self, pk: int) -> WebhookEndpoint:
        return get_object_or_404(self.endpoints(), pk=pk)


def _save(serializer: WebhookEndpointSerializer, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    data = serializer.validated_data
    try:
        with transaction.atomic():
            # Locked first: a DELETE that won the race is a 404 (saving would insert
            # the row again), and one that comes after waits for this to commit.
            if not WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).exists():
                raise NotFound()
            services.endpoint_update(
                endpoint, url=data.get("url"), event_types=data.get("event_types"), description=data.get("description")
            )
            if data.get("enabled") is True and not endpoint.enabled:
                services.endpoint_enable(endpoint)
            elif data.get("enabled") is False and endpoint.enabled:
                services.endpoint_disable(endpoint.pk, reason=data.get("disabled_reason") or "disabled by the tenant")
            endpoint.refresh_from_db()
    except ForbiddenURL as exc:
        raise ValidationError({"url": [str(exc)]}) from None
    return endpoint


class EndpointListView(_Scoped, generics.ListAPIView):  # type: ignore[type-arg]
    """``GET/POST /api/webhook-endpoints/``."""

    serializer_class = WebhookEndpointSerializer

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return self.endpoints().order_by("pk")

    @extend_schema(responses=tenant_responses({200: WebhookEndpointSerializer(many=True)}))
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=WebhookEndpointSerializer,
        responses=tenant_responses({201: CreatedWebhookEndpointSerializer, 400: VALIDATION_ERRORS}),
    )
    def post(self, request: Request) -> Response:
        tenant = tenant_for(request)  # a tenant the user is not a member of is a 404 before anything else
        serializer = WebhookEndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            endpoint, secret = services.endpoint_create(
                tenant_id=tenant.pk,
                url=data["url"],
                event_types=data.get("event_types", []),
                description=data.get("description", ""),
            )
        except ForbiddenURL as exc:
            raise ValidationError({"url": [str(exc)]}) from None
        body = CreatedWebhookEndpointSerializer(endpoint).data
        return Response({**body, "secret": secret}, status=status.HTTP_201_CREATED)


class EndpointDetailView(_Scoped, APIView):
    """``GET/PUT/PATCH/DELETE /api/webhook-endpoints/<id>/``; ``enabled: false`` (with
    ``disabled_reason``) disables it, ``enabled: true`` enables it again."""

    serializer_class = WebhookEndpointSerializer

    @extend_schema(responses=tenant_responses({200: WebhookEndpointSerializer}))
    def get(self, request: Request, pk: int) -> Response:
        return Response(WebhookEndpointSerializer(self.endpoint(pk)).data)

    @extend_schema(
        request=WebhookEndpointSerializer,
        responses=tenant_responses({200: WebhookEndpointSerializer, 400: VALIDATION_ERRORS}),
    )
    def put(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(
        request=WebhookEndpointSerializer,
        responses=tenant_responses({200: WebhookEndpointSerializer, 400: VALIDATION_ERRORS}),
    )
    def patch(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=True)

    def _update(self, request: Request, pk: int, *, partial: bool) -> Response:
        endpoint = self.endpoint(pk)
        serializer = WebhookEndpointSerializer(endpoint, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return Response(WebhookEndpointSerializer(_save(serializer, endpoint)).data)

    @extend_schema(responses=tenant_responses({204: None}))
    def delete(self, request: Request, pk: int) -> Response:
        self.endpoint(pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


SECRET = inline_serializer("WebhookSecret", fields={"secret": serializers.CharField()})


class RotateSecretView(_Scoped, APIView):
    """``POST /api/webhook-endpoints/<id>/rotate-secret/``: a new secret (shown
    once); the old one keeps signing beside it for 24 hours."""

    @extend_schema(request=None, responses=tenant_responses({200: SECRET}))
    def post(self, request: Request, pk: int) -> Response:
        return Response({"secret": services.endpoint_rotate_secret(self.endpoint(pk))})


class DeliveryListView(_Scoped, generics.ListAPIView):  # type: ignore[type-arg]
    """``GET /api/webhook-endpoints/<id>/deliveries/``: newest first, each with its
    attempts; ``?status=pending|succeeded|failed`` filters."""

    serializer_class = WebhookDeliverySerializer

    def get_queryset(self) -> QuerySet[Delivery]:
        endpoint = self.endpoint(self.kwargs["pk"])
        deliveries = Delivery.objects.filter(endpoint=endpoint).select_related("message")
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in Delivery.Status.values:
                raise ValidationError({"status": [f"one of {', '.join(Delivery.Status.values)}"]})
            deliveries = deliveries.filter(status=wanted)
        attempts = Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("at", "id"))
        return deliveries.prefetch_related(attempts).order_by("-created_at", "-id")

    @extend_schema(responses=tenant_responses({200: WebhookDeliverySerializer(many=True), 400: VALIDATION_ERRORS}))
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class WebhookResendSerializer(serializers.Serializer[dict[str, Any]]):
    msg_id = serializers.CharField(max_length=64, help_text="The message's webhook-id.")


class WebhookRecoverSerializer(serializers.Serializer[dict[str, Any]]):
    since = serializers.DateTimeField(help_text="Send again every message that failed, created since then.")


COUNT = inline_serializer("WebhookRestarted", fields={"queued": serializers.IntegerField()})


class _Restart(_Scoped, APIView):
    def _run(self, endpoint: WebhookEndpoint, run: Any) -> Response:
        try:
            queued = run(endpoint)
        except services.EndpointDisabled as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


class ResendView(_Restart):
    """``POST /api/webhook-endpoints/<id>/resend/`` ``{msg_id}``: that message again."""

    @extend_schema(
        request=WebhookResendSerializer,
        responses=tenant_responses({202: COUNT, 400: VALIDATION_ERRORS, 409: ERROR_DETAIL}),
    )
    def post(self, request: Request, pk: int) -> Response:
        endpoint = self.endpoint(pk)  # another tenant's id is a 404 whatever the body
        data = WebhookResendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        msg_id = data.validated_data["msg_id"]
        if not Delivery.objects.filter(endpoint=endpoint, message__msg_id=msg_id).exists():
            return Response({"detail": f"no message {msg_id} for this endpoint"}, status=status.HTTP_404_NOT_FOUND)
        return self._run(endpoint, lambda e: services.delivery_resend(e, msg_id=msg_id))


class RecoverView(_Restart):
    """``POST /api/webhook-endpoints/<id>/recover/`` ``{since}``: every failed message since then."""

    @extend_schema(
        request=WebhookRecoverSerializer,
        responses=tenant_responses({202: COUNT, 400: VALIDATION_ERRORS, 409: ERROR_DETAIL}),
    )
    def post(self, request: Request, pk: int) -> Response:
        endpoint = self.endpoint(pk)
        data = WebhookRecoverSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        since = data.validated_data["since"]
        return self._run(endpoint, lambda e: services.deliveries_recover(e, since=since))


EVENT_TYPE = inline_serializer(
    "WebhookEventType",
    fields={
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "version": serializers.IntegerField(),
        "example": serializers.DictField(),
    },
    many=True,
)


class EventTypeListView(APIView):
    """``GET /api/webhook-event-types/``: what an endpoint can subscribe to."""

    @extend_schema(responses=tenant_responses({200: EVENT_TYPE}))
    def get(self, request: Request) -> Response:
        tenant_for(request)  # members only, like the rest of the tenant API
        return Response(
            [
                {"name": t.name, "description": t.description, "version": t.version, "example": t.example}
                for t in catalog.event_types()
            ]
        )
