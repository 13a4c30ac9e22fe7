"""Every change an operator makes under /admin/ leaves an AuditEntry."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from queueing.models import AuditEntry, FailedJob
from tenants.models import Tenant
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _failed(n: int) -> list[int]:
    rows = FailedJob.objects.bulk_create(
        FailedJob(job_id=f"j{i}", queue="default", job_name="x.y", exception_class="E") for i in range(n)
    )
    return [row.pk for row in rows]


def _admin_client() -> tuple[Client, User]:
    user = User.objects.create_superuser("root", "root@example.com", "pw-123456789")
    client = Client()
    client.force_login(user)
    return client, user


def test_an_admin_action_is_audited_with_its_selection() -> None:
    ids = _failed(2)
    client, _ = _admin_client()
    response = client.post(
        "/admin/queueing/failedjob/", {"action": "forget", "_selected_action": [str(i) for i in ids]}
    )
    assert response.status_code == 302
    assert not FailedJob.objects.exists()
    [entry] = AuditEntry.objects.all()
    assert (entry.username, entry.action, entry.target) == ("root", "admin:forget", "/admin/queueing/failedjob/")
    assert entry.detail["selected"] == [str(i) for i in ids]
    assert entry.ip == "127.0.0.1"


def test_a_model_edit_is_audited_but_not_its_values() -> None:
    tenant = TenantFactory.create()
    client, _ = _admin_client()
    page = client.get(f"/admin/tenants/tenant/{tenant.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update({"name": "Renamed", "plan": tenant.plan_id, "status": tenant.status})
    data.update({key: value for key, value in _inline_management(page).items()})
    response = client.post(f"/admin/tenants/tenant/{tenant.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    assert Tenant.objects.get(pk=tenant.pk).name == "Renamed"
    [entry] = AuditEntry.objects.all()
    assert entry.action == "admin:change" and "Renamed" not in str(entry.detail)


def _inline_management(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The management-form fields of every inline formset on a change page."""
    out: dict[str, str] = {}
    for formset in page.context.get("inline_admin_formsets", []):
        for field in formset.formset.management_form:
            out[field.html_name] = str(field.value() if field.value() is not None else "")
    return out


def test_logins_refusals_and_reads_are_not_audited() -> None:
    _failed(1)
    User.objects.create_user("staff", password="pw-123456789", is_staff=True)
    client = Client()
    assert client.post("/admin/login/", {"username": "staff", "password": "pw-123456789"}).status_code == 302
    client.post("/admin/queueing/failedjob/", {"action": "forget", "_selected_action": ["1"]})  # no permission
    client.get("/admin/queueing/failedjob/")
    assert FailedJob.objects.count() == 1
    assert not AuditEntry.objects.exists()
