"""The tenant API's OpenAPI schema at /api/schema/ (drf-spectacular, tenants/schema.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

# Every tenant API operation (README "HTTP endpoints"); the fuzz suite
# (chaos/test_api_fuzz.py) exercises exactly what the schema lists.
TENANT_OPERATIONS = {
    ("post", "/api/exports/"),
    ("get", "/api/exports/{export_id}/"),
    ("put", "/api/products/{product_id}/image/"),
    ("get", "/api/analytics/"),
    ("post", "/api/reports/"),
    ("get", "/api/reports/{report_id}/"),
    ("get", "/api/reports/{report_id}/thumbnail/"),
    ("post", "/api/privacy/erase/"),
    ("get", "/api/privacy/erase/{erasure_id}/"),
    ("get", "/api/campaigns/{campaign_id}/"),
    ("post", "/api/campaigns/{campaign_id}/send/"),
    ("get", "/api/appointments/"),
    ("post", "/api/appointments/"),
    ("get", "/api/appointments/{id}/"),
    ("post", "/api/appointments/{id}/cancel/"),
    ("post", "/api/appointments/{id}/reschedule/"),
    *((m, f"/api/{noun}/") for noun in ("customers", "services", "staff") for m in ("get", "post")),
    *((m, f"/api/{noun}/{{id}}/") for noun in ("customers", "services", "staff") for m in ("get", "put", "patch")),
    ("get", "/api/webhook-endpoints/"),
    ("post", "/api/webhook-endpoints/"),
    *((m, "/api/webhook-endpoints/{id}/") for m in ("get", "put", "patch", "delete")),
    ("post", "/api/webhook-endpoints/{id}/rotate-secret/"),
    ("get", "/api/webhook-endpoints/{id}/deliveries/"),
    ("post", "/api/webhook-endpoints/{id}/resend/"),
    ("post", "/api/webhook-endpoints/{id}/recover/"),
    ("get", "/api/webhook-event-types/"),
}


def _operations(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in schema["paths"].items() for method in item if method != "parameters"}


def test_the_schema_lists_the_tenant_api_and_nothing_else(client: Client) -> None:
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Vito Business OS tenant API"
    # Webhooks are for payment providers, not tenants; plain Django views never appear.
    assert _operations(schema) == TENANT_OPERATIONS


def test_the_schema_is_yaml_by_default_and_documents_auth_and_the_tenant_header(client: Client) -> None:
    response = client.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            names = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
            assert ("header", "X-Tenant") in names, (method, path)
            assert {"401", "404"} <= set(operation["responses"]), (method, path)


def test_every_operation_documents_its_bodies() -> None:
    schema = _generated()
    exports = schema["paths"]["/api/exports/"]["post"]
    assert set(exports["responses"]) >= {"202", "400"}
    assert exports["requestBody"]["required"] is True
    image = schema["paths"]["/api/products/{product_id}/image/"]["put"]
    assert list(image["requestBody"]["content"]) == ["multipart/form-data"]
    analytics = schema["paths"]["/api/analytics/"]["get"]
    assert {p["name"] for p in analytics["parameters"] if p["in"] == "query"} == {"from", "to"}
    send = schema["paths"]["/api/campaigns/{campaign_id}/send/"]["post"]
    assert "requestBody" not in send
    assert set(send["responses"]) >= {"202", "409"}


def test_generation_is_valid_and_warning_free(tmp_path: Path) -> None:
    """An API view spectacular cannot read (a new APIView without extend_schema)
    is a warning: this keeps the schema complete as views are added."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert _operations(yaml.safe_load(out.read_text())) == TENANT_OPERATIONS


def _generated() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]
