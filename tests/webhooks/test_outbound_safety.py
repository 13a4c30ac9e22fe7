"""Where deliveries may go: public addresses only (unless the development
switch is on), checked at registration and again at the address connected
to; no redirects followed, bodies read up to a cap, timeouts."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.factories import TenantFactory
from webhooks.outbound import client
from webhooks.outbound.addresses import ForbiddenURL, check_url
from webhooks.outbound.models import DeliveryAttempt, WebhookEndpoint
from webhooks.outbound.services import endpoint_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(settings: Any) -> None:
    settings.OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    settings.OUTBOUND_WEBHOOK_REQUIRE_HTTPS = True


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://224.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
    ],
)
def test_non_public_addresses_are_refused_at_registration(strict: None, url: str) -> None:
    with pytest.raises(ForbiddenURL, match="address"):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://93.184.216.34/hook", "must be https"),
        ("ftp://93.184.216.34/hook", "http or https"),
        ("https://user:pw@93.184.216.34/hook", "user name or password"),
        ("https:///hook", "no host"),
    ],
)
def test_malformed_or_plain_http_urls_are_refused(strict: None, url: str, reason: str) -> None:
    with pytest.raises(ForbiddenURL, match=reason):
        check_url(url)


def test_a_public_address_is_accepted(strict: None) -> None:
    check_url("https://93.184.216.34/hook")


def test_the_api_refuses_a_loopback_url_and_stores_nothing(strict: None) -> None:
    from tests.webhooks.test_outbound_api import member

    api = member(TenantFactory.create())
    answer = api.post(
        "/api/webhook-endpoints/", {"url": "https://localhost:8443/hook"}, content_type="application/json"
    )
    assert answer.status_code == 400 and "loopback" in answer.json()["url"][0]
    assert not WebhookEndpoint.objects.exists()


class _Handler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Handler.hits.append(self.path)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/target")
            self.end_headers()
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 100_000)
        elif self.path == "/slow":
            threading.Event().wait(5)
        else:
            self.send_response(200)
            self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def local(settings: Any) -> Any:
    settings.OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.OUTBOUND_WEBHOOK_REQUIRE_HTTPS = False
    settings.OUTBOUND_WEBHOOK_READ_TIMEOUT = 0.5
    _Handler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_redirects_are_not_followed(local: str) -> None:
    outcome = client.post(f"{local}/redirect", b"{}", {})
    assert outcome.status == 302 and not outcome.ok
    assert _Handler.hits == ["/redirect"]


def test_the_body_is_read_up_to_the_cap(local: str) -> None:
    outcome = client.post(f"{local}/big", b"{}", {})
    assert outcome.ok and len(outcome.body) == client.RESPONSE_CAP


def test_a_receiver_that_does_not_answer_times_out(local: str) -> None:
    outcome = client.post(f"{local}/slow", b"{}", {})
    assert outcome.status is None and outcome.error.startswith("timed out")


def test_the_address_connected_to_is_checked_again_at_send_time(
    local: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name registered while it resolved to a public address, resolving to
    loopback by the time of sending (DNS rebinding): nothing is sent."""
    port = int(local.rsplit(":", 1)[1])
    settings.OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    real, answer = socket.getaddrinfo, {"rebind.example": "93.184.216.34"}

    def dns(host: str, *args: Any, **kwargs: Any) -> Any:  # the outside world's DNS, which we do not control
        return real(answer.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    tenant = TenantFactory.create()
    hook, _ = endpoint_create(tenant_id=tenant.pk, url=f"http://rebind.example:{port}/hook")  # public: accepted
    answer["rebind.example"] = "127.0.0.1"  # and now it points home
    outcome = client.post(hook.url, b"{}", {})
    assert outcome.status is None and "refused" in outcome.error and "loopback" in outcome.error
    assert _Handler.hits == []
    assert not DeliveryAttempt.objects.exists()
