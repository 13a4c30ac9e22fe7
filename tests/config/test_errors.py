"""A database that cannot be reached is a 503 with Retry-After, site-wide (config/errors.py).

The database is made unreachable for real: the request's connection is
pointed at a loopback port nobody listens on, so connecting fails the way it
does while PostgreSQL restarts.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client, RequestFactory

from config.errors import RETRY_AFTER_SECONDS, server_error

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def database_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", _closed_port())
    monkeypatch.setitem(
        connection.settings_dict, "OPTIONS", {**connection.settings_dict["OPTIONS"], "connect_timeout": 2}
    )
    yield
    connection.close()  # the next use reconnects with the restored settings


def _client() -> Client:
    return Client(raise_request_exception=False)


def test_api_call_without_a_database_is_a_503_with_retry_after(database_down: None) -> None:
    response = _client().get("/api/exports/", headers={"Authorization": "Token " + "0" * 40})
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "temporarily unavailable" in response.json()["error"]


def test_admin_page_without_a_database_is_an_html_503(database_down: None) -> None:
    response = _client().get("/admin/login/", headers={"Accept": "text/html", "Cookie": "sessionid=" + "a" * 32})
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert b"Service unavailable" in response.content


def test_healthz_stays_up_without_a_database(database_down: None) -> None:
    # Liveness: the process reconnects by itself, restarting it would not help.
    assert _client().get("/healthz").status_code == 200


def test_other_errors_stay_500() -> None:
    request = RequestFactory().get("/anything")
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(request)
    assert response.status_code == 500
    assert "Retry-After" not in response
