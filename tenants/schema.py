"""The tenant API's OpenAPI schema (drf-spectacular), served at ``/api/schema/``.

Only the tenant API is described: the payment-provider webhooks are DRF views
too, but they are called by providers with signatures, not by tenants, so the
preprocessing hook drops them. Plain Django views (tracking, signed downloads,
unsubscribe, admin, metrics) are never in the schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

# Paths under the /api/ prefix that are not the tenant API.
NOT_TENANT_API = ("/api/webhooks/",)

TENANT_HEADER = OpenApiParameter(
    name="X-Tenant",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Slug of the tenant to act for. Needed only when the user belongs to several tenants; "
        "a tenant the user is not a member of is a 404."
    ),
)

ERROR_DETAIL = inline_serializer("ErrorDetail", fields={"detail": serializers.CharField()})

# DRF's validation errors: {"field": ["message", …]} (or "non_field_errors", or "detail").
VALIDATION_ERRORS = OpenApiResponse(
    response={
        "type": "object",
        "additionalProperties": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
    },
    description="What was wrong, per field.",
)


def tenant_responses(responses: dict[int, Any]) -> dict[int, Any]:
    """An operation's own responses plus what every tenant API operation may answer."""
    return {
        **responses,
        401: OpenApiResponse(ERROR_DETAIL, description="No or an invalid `Authorization: Token …`."),
        403: OpenApiResponse(ERROR_DETAIL, description="Not allowed (a session without its CSRF token)."),
        404: OpenApiResponse(
            ERROR_DETAIL, description="No such object for this tenant, or no tenant for this user (X-Tenant)."
        ),
    }


def tenant_api_only(endpoints: list[tuple[str, str, str, Any]], **_kwargs: Any) -> list[tuple[str, str, str, Any]]:
    """Keep the tenant API; drop the webhooks (see the module docstring)."""
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(NOT_TENANT_API)]


class TenantAutoSchema(AutoSchema):
    """Every tenant API operation takes the optional ``X-Tenant`` header (tenants/api.py)."""

    def get_override_parameters(self) -> list[Any]:
        return [TENANT_HEADER, *super().get_override_parameters()]
