"""A hung Redis does not hang the web: every Redis connection has a connect and
a read timeout (REDIS_CONNECT_TIMEOUT / REDIS_SOCKET_TIMEOUT), so the pixel is
served, webhooks are taken, and pages that need Redis answer 503 within it.

"Hung" here is a server that completes the TCP handshake (the kernel does
that from its backlog) and then never answers — what a SIGSTOPped
redis-server looks like to a client. ``make chaos`` stops the real one.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import django_rq
import pytest
from django.conf import settings as django_settings
from django.test import Client
from standardwebhooks.webhooks import Webhook

from config.errors import REDIS_MESSAGE
from queueing import dispatch
from tenants import tracking
from tests.factories import TenantFactory, UserFactory
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_every_redis_connection_has_timeouts() -> None:
    kwargs = django_rq.get_connection("default").connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == django_settings.REDIS_CONNECT_TIMEOUT > 0
    assert kwargs["socket_timeout"] == django_settings.REDIS_SOCKET_TIMEOUT > 0


@pytest.fixture
def hung_redis(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)  # accepts handshakes, never reads: a stopped server
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0?socket_connect_timeout=1&socket_timeout=1"
    settings.RQ_QUEUES = {name: {**queue, "URL": url} for name, queue in settings.RQ_QUEUES.items()}
    monkeypatch.setattr(dispatch, "_queues", {})
    tracking.clear_caches()
    yield
    tracking.clear_caches()
    listener.close()


def test_the_pixel_is_served_uncounted(hung_redis: None) -> None:
    tenant = TenantFactory.create()
    response = Client().get(f"/t/{tenant.slug}/pixel.gif")
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"


def test_a_payment_webhook_is_taken(hung_redis: None, settings: Any) -> None:
    settings.PAYMENT_WEBHOOK_SECRET = SECRET
    msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    body = json.dumps({"type": "payment.succeeded", "data": {"order_id": 1, "amount": "1.00", "currency": "USD"}})
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id=msg_id, timestamp=now, data=body),
    }
    response = Client().post("/api/webhooks/payments/", body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    assert WebhookEvent.objects.filter(event_id=msg_id).exists()  # stored with its outbox message


def test_pages_that_read_redis_answer_503_and_the_admin_stays_up(hung_redis: None) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    response = client.get("/admin/queues/", headers={"Accept": "text/html"})
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert REDIS_MESSAGE.encode() in response.content
    assert client.get("/admin/").status_code == 200
