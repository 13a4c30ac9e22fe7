from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook
from redis import Redis
from rest_framework.authtoken.models import Token

from orders.models import Order, SalesExport
from orders.services import LineRequest, order_place
from tenants.downloads import download_url
from tenants.models import TenantMember
from tests.factories import ProductFactory, TenantFactory, UserFactory
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _member(tenant: Any) -> Client:
    user = UserFactory.create(email="owner@example.com")
    TenantMember.objects.create(tenant=tenant, user=user, role=TenantMember.Role.OWNER)
    token = Token.objects.create(user=user)
    return Client(headers={"Authorization": f"Token {token.key}"})


def _orders(tenant: Any, count: int) -> list[Order]:
    product = ProductFactory.create(tenant=tenant, stock_quantity=1000)
    return [
        order_place(tenant=tenant, customer_email=f"c{i}@example.com", lines=[LineRequest(product.pk, 1)])
        for i in range(count)
    ]


def test_an_xlsx_export_end_to_end(redis_conn: Redis, smtp_server: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("EMAIL_URL", smtp_server.url)  # the worker e-mails through the test SMTP server
    tenant = TenantFactory.create()
    placed = _orders(tenant, 25)
    _orders(TenantFactory.create(), 3)  # another tenant's orders stay out
    client = _member(tenant)
    today = timezone.localdate()
    response = client.post("/api/exports/", {"date_from": str(today - timedelta(days=1)), "date_to": str(today)},
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 202
    status_url = response.json()["status_url"]
    assert client.get(status_url).json()["status"] == "queued"
    worker = run_worker("default", "--burst")
    assert worker.returncode == 0
    [mail] = smtp_server.messages
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    assert "25 order(s)" in text and "the link works for 24 hours" in text and "/d/" in text
    assert 'href="http' in html and "/d/" in html
    body = client.get(status_url).json()
    assert (body["status"], body["rows_done"], body["rows_total"], body["progress"]) == ("done", 25, 25, 1.0)
    download = client.get(body["download_url"])
    assert download.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(download.streaming_content))).active  # type: ignore[attr-defined]
    download.close()
    rows = list(sheet.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert rows[0][0] == "Number" and len(rows) == 26
    assert {r[0] for r in rows[1:]} == {o.number for o in placed}


def test_csv_and_bad_input(redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    _orders(tenant, 3)
    client = _member(tenant)
    today = str(timezone.localdate())
    assert (
        client.post(
            "/api/exports/", {"date_from": today, "date_to": "2000-01-01"}, content_type="application/json"
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/exports/", {"date_from": today, "date_to": today, "format": "pdf"}, content_type="application/json"
        ).status_code
        == 400
    )
    response = client.post(
        "/api/exports/", {"date_from": today, "date_to": today, "format": "csv"}, content_type="application/json"
    )
    run_worker("default", "--burst")
    body = client.get(response.json()["status_url"]).json()
    download = client.get(body["download_url"])
    content = b"".join(download.streaming_content).decode()  # type: ignore[attr-defined]
    download.close()
    assert content.splitlines()[0].startswith("Number,Created at") and len(content.splitlines()) == 4


def test_the_last_representable_day_is_a_400_not_a_failing_job(redis_conn: Redis) -> None:
    """Found by the API fuzz (chaos/test_api_fuzz.py): 9999-12-31 was accepted and
    the job then failed, since a day's window ends at the start of the next one."""
    client = _member(TenantFactory.create())
    response = client.post(
        "/api/exports/", {"date_from": "9999-12-01", "date_to": "9999-12-31"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {"date_to": ["must be before 9999-12-31"]}
    assert not SalesExport.objects.exists()
    assert redis_conn.llen("rq:queue:default") == 0
    # The day before still works, end to end.
    ok = client.post(
        "/api/exports/",
        {"date_from": "0001-01-01", "date_to": "9999-12-30", "format": "csv"},
        content_type="application/json",
    )
    assert ok.status_code == 202
    run_worker("default", "--burst")
    assert SalesExport.objects.get().status == SalesExport.Status.DONE


def test_another_tenants_export_is_a_404(redis_conn: Redis) -> None:
    mine, theirs = TenantFactory.create(), TenantFactory.create()
    client = _member(mine)
    today = timezone.localdate()
    foreign = SalesExport.objects.create(tenant=theirs, date_from=today, date_to=today)
    assert client.get(f"/api/exports/{foreign.pk}/").status_code == 404
    assert client.get(f"/api/exports/{foreign.pk}/", headers={"X-Tenant": theirs.slug}).status_code == 404
    assert Client().post("/api/exports/", {}).status_code in (401, 403)


def test_signed_links_tampered_expired_other_purpose_and_deleted() -> None:
    tenant = TenantFactory.create()
    today = timezone.localdate()
    path = default_storage.save(f"exports/{tenant.pk}/t.csv", io.BytesIO(b"Number\n"))
    export = SalesExport.objects.create(
        tenant=tenant, date_from=today, date_to=today, status="done", file=path, format="csv"
    )
    client = Client()
    good = download_url(kind="export", object_id=export.pk, tenant_id=tenant.pk)
    ok = client.get(good)
    assert ok.status_code == 200
    ok.close()
    tampered = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
    assert client.get(tampered).status_code == 403
    assert (
        client.get(download_url(kind="export", object_id=export.pk, tenant_id=tenant.pk, lifetime=-1)).status_code
        == 410
    )
    other_purpose = good.replace("/d/export.", "/d/report.")
    assert client.get(other_purpose).status_code == 403
    wrong_tenant = download_url(kind="export", object_id=export.pk, tenant_id=tenant.pk + 1000)
    assert client.get(wrong_tenant).status_code == 404
    default_storage.delete(path)
    assert client.get(good).status_code == 404
