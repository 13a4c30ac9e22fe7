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
