"""The front page a newcomer opens after `make run` links where the work is."""

from __future__ import annotations

from django.test import Client


def test_it_links_the_admin_dashboard_and_schema() -> None:
    response = Client().get("/")
    assert response.status_code == 200
    body = response.content.decode()
    for href in ('href="/admin/"', 'href="/admin/queues/"', 'href="/api/schema/"', 'href="/healthz"'):
        assert href in body
    # The linked pages exist: the schema answers, the admin sends strangers to its login.
    assert Client().get("/api/schema/").status_code == 200
    assert Client().get("/admin/")["Location"].startswith("/admin/login/")
