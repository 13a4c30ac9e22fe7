from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django_rq
import pytest
from redis import Redis

# Real worker processes started by a test, killed at its end: for every test directory.
from tests.queueing.conftest import workers  # noqa: F401 - the fixture


@pytest.fixture
def redis_conn() -> Iterator[Redis]:
    """The queues' Redis database, emptied before and after each test that asks for it."""
    conn = django_rq.get_connection("default")
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[Any]:
    """A real SMTP server on loopback; Django's SMTP backend is pointed at it."""
    from tests.mail import Inbox, start

    inbox = Inbox()
    controller, port = start(inbox)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    inbox.url = f"smtp://127.0.0.1:{port}"  # EMAIL_URL for worker subprocesses
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()
