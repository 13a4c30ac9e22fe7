from __future__ import annotations

import pytest
from redis import Redis

from queueing import keys
from queueing.definitions import Exponential, backoff_delays
from queueing.middleware import JobContext, Release, ThrottlesExceptions, run_with_middleware


def test_backoff_gives_one_delay_per_retry_repeating_the_last() -> None:
    assert backoff_delays([10, 30, 60], 5) == [10, 30, 60, 60, 60]
    assert backoff_delays([10, 30, 60], 2) == [10, 30]
    assert backoff_delays(None, 3) == [0, 0, 0]
    assert backoff_delays(7, 2) == [7, 7]
    assert backoff_delays(Exponential(base=2, cap=10, jitter=0), 5) == [2, 4, 8, 10, 10]
    assert all(4 <= d <= 5 for d in Exponential(base=4, cap=100, jitter=0.25).delays(1))


def test_throttles_exceptions_does_not_count_a_release_from_inner_middleware(redis_conn: Redis) -> None:
    ctx = JobContext("j1", "tests.job", (), {}, redis_conn)

    def not_now() -> None:
        raise Release(5, "rate limited")

    breaker = ThrottlesExceptions(max_exceptions=1, decay=60)
    for _ in range(3):
        with pytest.raises(Release):
            run_with_middleware((breaker,), ctx, not_now)
    assert redis_conn.get(keys.throttle("tests.job:all")) is None

    def boom() -> None:
        raise ConnectionError("provider down")

    with pytest.raises(ConnectionError):
        run_with_middleware((breaker,), ctx, boom)
    with pytest.raises(Release, match="throttled"):
        run_with_middleware((breaker,), ctx, boom)
    assert 0 < int(redis_conn.ttl(keys.throttle("tests.job:all"))) <= 60


def test_a_jobs_tenant_is_found_by_argument_name_position_or_keyword() -> None:
    """The position is read from the signature once, when the job is declared."""
    from queueing.definitions import JobDefinition

    def by_convention(order_id: int, tenant_id: int, *, note: str = "") -> None: ...

    def named(account: int, *, owner: int) -> None: ...

    def tenantless(order_id: int) -> None: ...

    conventional = JobDefinition(by_convention)
    assert conventional.tenant_position == 1
    assert conventional.tenant_id([5, 7], {}) == 7
    assert conventional.tenant_id([5], {"tenant_id": 9}) == 9
    assert conventional.tenant_id([5], {}) is None  # not given
    assert conventional.tenant_id([5, "7"], {}) is None  # not an id
    keyword_only = JobDefinition(named, tenant_arg="owner")
    assert keyword_only.tenant_position is None and keyword_only.tenant_id([1], {"owner": 3}) == 3
    assert JobDefinition(tenantless).tenant_id([1], {}) is None
    assert conventional.on_queue("high").tenant_id([5, 7], {}) == 7
