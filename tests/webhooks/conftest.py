from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.webhooks.receiver import Receiver, start


@pytest.fixture
def outbound(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outbound webhooks set up for loopback receivers, here and in worker
    subprocesses (they read the environment): private networks allowed,
    plain http, short timeouts, the retry schedule on a clock 1,000× fast."""
    values = {
        "OUTBOUND_WEBHOOK_ALLOW_PRIVATE_NETWORKS": True,
        "OUTBOUND_WEBHOOK_REQUIRE_HTTPS": False,
        "OUTBOUND_WEBHOOK_CONNECT_TIMEOUT": 2.0,
        "OUTBOUND_WEBHOOK_READ_TIMEOUT": 2.0,
        "OUTBOUND_WEBHOOK_RETRY_SCALE": 0.001,
    }
    for name, value in values.items():
        setattr(settings, name, value)
        monkeypatch.setenv(name, str(value))


@pytest.fixture
def receiver(outbound: None) -> Iterator[Receiver]:
    found = Receiver()
    server = start(found)
    yield found
    server.shutdown()
    server.server_close()
