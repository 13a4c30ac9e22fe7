from __future__ import annotations

from collections.abc import Iterator

import django_rq
import pytest
from redis import Redis


@pytest.fixture
def redis_conn() -> Iterator[Redis]:
    """The queues' Redis database, emptied before and after each test that asks for it."""
    conn = django_rq.get_connection("default")
    conn.flushdb()
    yield conn
    conn.flushdb()
